//! Number formats shared by tables, figures and the summary.

/// Counts the way people say them: 950, 20k, 1.5M, 96B.
pub fn count(value: f64) -> String {
    if !value.is_finite() {
        return if value > 0.0 {
            "∞".into()
        } else {
            "-".into()
        };
    }
    let (scaled, suffix) = match value.abs() {
        v if v >= 1e12 => (value / 1e12, "T"),
        v if v >= 1e9 => (value / 1e9, "B"),
        v if v >= 1e6 => (value / 1e6, "M"),
        v if v >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let text = if scaled.abs() >= 100.0 || scaled.fract() == 0.0 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else {
        format!("{scaled:.2}")
    };
    format!("{}{suffix}", trim_zeros(&text))
}

/// Epochs with as many decimals as they need to be told apart.
pub fn epochs(value: f64) -> String {
    match value {
        v if !v.is_finite() => count(v),
        v if v >= 100.0 => format!("{v:.0}"),
        v if v >= 10.0 => trim_zeros(&format!("{v:.1}")),
        v => trim_zeros(&format!("{v:.2}")),
    }
}

/// A metric value: 4 significant decimals are plenty for accuracies and losses.
pub fn value(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.4}")
    }
}

fn trim_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        let cases = [
            (950.0, "950"),
            (20_000.0, "20k"),
            (1_500_000.0, "1.5M"),
            (96e9, "96B"),
            (12_345.0, "12.3k"),
        ];
        for (value, expected) in cases {
            assert_eq!(super::count(value), expected);
        }
        assert_eq!(super::count(f64::INFINITY), "∞");
        assert_eq!(super::epochs(2.0), "2");
        assert_eq!(super::epochs(12.34), "12.3");
        assert_eq!(super::epochs(1.256), "1.26");
    }
}
