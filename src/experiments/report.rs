//! Markdown writers for the tables, and marker-delimited replacement in documents.

use super::table1::Table1Row;
use super::transfer::TransferTable;
use std::fmt::Write;

/// The paper's Table 1 values: (model, train error %, test error %, mean distortion).
pub(crate) const PAPER_TABLE1: [(&str, f64, f64, f64); 6] = [
    ("FC10(1e-4)", 6.7, 7.4, 0.062),
    ("FC10(1e-2)", 10.0, 9.4, 0.1),
    ("FC10(1)", 21.2, 20.0, 0.14),
    ("FC100-100-10", 0.0, 1.64, 0.058),
    ("FC200-200-10", 0.0, 1.54, 0.065),
    ("AE400-10", 0.57, 1.9, 0.086),
];

fn pct(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{:.2}%", 100.0 * v)
    }
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.4}")
    }
}

/// Table 1 as Markdown: ours beside the paper's Table 1 values when `with_paper` is set and
/// the model is one of the paper's six (Table 3 reuses the layout without them).
pub fn table1_markdown(rows: &[Table1Row], with_paper: bool) -> String {
    let mut s = String::new();
    s.push_str(
        "| Model | Train error | Test error | Mean min. distortion (RMS) | Median | Exact optimum† | Attacked (ok / failed / skipped*) | Paper train | Paper test | Paper distortion |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let paper = PAPER_TABLE1.iter().find(|p| with_paper && p.0 == r.model);
        let (pt, pte, pd) = match paper {
            Some(p) => (format!("{}%", p.1), format!("{}%", p.2), format!("{}", p.3)),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} / {} / {} | {pt} | {pte} | {pd} |",
            r.model,
            pct(r.train_error),
            pct(r.test_error),
            num(r.mean_rms),
            num(r.median_rms),
            r.linear_bound_rms.map_or("–".into(), num),
            r.succeeded,
            r.failures.len(),
            r.misclassified,
        );
    }
    s.push_str(
        "\n† single-layer models only: mean exact minimum RMS distortion inside the [0, 1] box over the same examples (closed form up to a scalar bisection, `experiments::linear_min_rms`) — what a perfect attack would reach.\n",
    );
    s.push_str(
        "\\* skipped: sampled images the model already misclassifies (distortion 0, left out of the averages).\n",
    );
    let failed: Vec<&Table1Row> = rows.iter().filter(|r| !r.failures.is_empty()).collect();
    if !failed.is_empty() {
        s.push_str("\nFailed attacks:\n\n");
        for r in failed {
            let _ = writeln!(s, "- {}: {}", r.model, r.failures.join("; "));
        }
    }
    s
}

/// A transfer table as Markdown (entries: share misclassified; last columns: examples and
/// mean RMS distortion).
pub fn transfer_markdown(t: &TransferTable) -> String {
    let mut s = String::from("| Examples from \\ fed to |");
    for m in &t.models {
        let _ = write!(s, " {m} |");
    }
    s.push_str(" n | Mean distortion (RMS) |\n|---|");
    for _ in 0..t.models.len() + 2 {
        s.push_str("---|");
    }
    s.push('\n');
    for (i, src) in t.sources.iter().enumerate() {
        let _ = write!(s, "| {src} |");
        for v in &t.rates[i] {
            let _ = write!(s, " {} |", pct(*v));
        }
        let _ = writeln!(s, " {} | {} |", t.counts[i], num(t.mean_rms[i]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_markdown_has_one_line_per_source() {
        let t = TransferTable {
            sources: vec!["A".into(), "noise".into()],
            models: vec!["A".into(), "B".into()],
            rates: vec![vec![1.0, 0.25], vec![0.0, f64::NAN]],
            counts: vec![4, 4],
            mean_rms: vec![0.05, 0.1],
        };
        let md = transfer_markdown(&t);
        assert!(md.contains("| A | 100.00% | 25.00% | 4 | 0.0500 |"), "{md}");
        assert!(md.contains("| noise | 0.00% | – | 4 | 0.1000 |"), "{md}");
    }
}
