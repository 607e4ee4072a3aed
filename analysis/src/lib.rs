//! Analysis of results trees.
