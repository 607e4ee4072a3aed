//! The report: one list of blocks rendered twice, as Markdown (figures linked) and as a
//! self-contained HTML page (figures embedded as base64 PNG data URIs, no external
//! requests), so it can be mailed or opened from a cluster's scratch folder.

use crate::error::{Result, io_error};
use base64::Engine;
use std::fmt::Write;
use std::path::PathBuf;

/// A piece of the report.
#[derive(Clone, Debug)]
pub enum Block {
    Heading(String),
    Paragraph(String),
    List(Vec<String>),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// `relative` is the PNG's path from the report's folder (Markdown links to it).
    Figure {
        title: String,
        caption: String,
        png: PathBuf,
        relative: String,
    },
}

/// Markdown: tables as pipes, figures as image links.
pub fn markdown(title: &str, blocks: &[Block]) -> String {
    let mut out = format!("# {title}\n\n");
    for block in blocks {
        match block {
            Block::Heading(text) => out += &format!("## {text}\n\n"),
            Block::Paragraph(text) => out += &format!("{text}\n\n"),
            Block::List(items) => {
                for item in items {
                    out += &format!("- {item}\n");
                }
                out += "\n";
            }
            Block::Table { header, rows } => {
                let line = |cells: &[String]| {
                    format!(
                        "| {} |\n",
                        cells
                            .iter()
                            .map(|c| c.replace('|', "\\|"))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                };
                out += &line(header);
                out += &format!("|{}\n", "---|".repeat(header.len()));
                for row in rows {
                    out += &line(row);
                }
                out += "\n";
            }
            Block::Figure {
                title,
                caption,
                relative,
                ..
            } => {
                out += &format!("### {title}\n\n![{title}]({relative})\n\n{caption}\n\n");
            }
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;max-width:1300px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}\
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}figure{margin:2em 0}img{max-width:100%;border:1px solid #ddd}\
figcaption{color:#555;font-size:14px}.error{color:#b00;font-weight:bold}";

/// Marks each figure as loaded (or shows an error under it) once the page has loaded;
/// the browser test reads these marks from the DOM.
const SCRIPT: &str = "window.addEventListener('load',()=>{let ok=0;for(const img of document.images){\
const loaded=img.complete&&img.naturalWidth>0;img.dataset.loaded=loaded;if(loaded){ok++}else{\
const note=document.createElement('p');note.className='error';note.textContent='figure failed to load';img.after(note)}}\
document.body.dataset.figuresLoaded=ok;});";

/// A self-contained HTML page.
pub fn html(title: &str, blocks: &[Block]) -> Result<String> {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for block in blocks {
        match block {
            Block::Heading(text) => out += &format!("<h2>{}</h2>\n", escape(text)),
            Block::Paragraph(text) => out += &format!("<p>{}</p>\n", escape(text)),
            Block::List(items) => {
                out += "<ul>\n";
                for item in items {
                    out += &format!("<li>{}</li>\n", escape(item));
                }
                out += "</ul>\n";
            }
            Block::Table { header, rows } => out += &table(header, rows),
            Block::Figure {
                title,
                caption,
                png,
                ..
            } => {
                let bytes = std::fs::read(png).map_err(io_error(png))?;
                let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                let id = png
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    "<figure id=\"figure-{id}\">\n<h3>{}</h3>\n<img id=\"img-{id}\" alt=\"{}\" src=\"data:image/png;base64,{data}\">\n<figcaption>{}</figcaption>\n</figure>\n",
                    escape(title),
                    escape(title),
                    escape(caption)
                );
            }
        }
    }
    out += &format!("<script>{SCRIPT}</script>\n</body>\n</html>\n");
    Ok(out)
}

fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let cells = |tag: &str, row: &[String]| {
        row.iter()
            .map(|c| format!("<{tag}>{}</{tag}>", escape(c)))
            .collect::<String>()
    };
    let mut out = format!(
        "<table>\n<thead><tr>{}</tr></thead>\n<tbody>\n",
        cells("th", header)
    );
    for row in rows {
        out += &format!("<tr>{}</tr>\n", cells("td", row));
    }
    out + "</tbody>\n</table>\n"
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_and_html_render_the_same_blocks() {
        let blocks = vec![
            Block::Heading("Runs".into()),
            Block::Paragraph("a < b".into()),
            Block::Table {
                header: vec!["id".into(), "state".into()],
                rows: vec![vec!["x|y".into(), "done".into()]],
            },
        ];
        let md = markdown("T", &blocks);
        assert!(
            md.contains("| id | state |\n|---|---|\n| x\\|y | done |"),
            "{md}"
        );
        let page = html("T", &blocks).unwrap_or_default();
        assert!(
            page.contains("<p>a &lt; b</p>") && page.contains("<td>x|y</td>"),
            "{page}"
        );
    }
}
