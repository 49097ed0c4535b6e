//! Column-aligned text tables, as `argocd` prints them (two spaces between columns).

/// Rows (the first one the header) as aligned lines; trailing blanks are trimmed so empty last
/// cells leave no whitespace behind.
pub fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A header row from column names.
pub fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_lines_end_without_blanks() {
        let text = aligned(&[
            header(&["NAME", "HEALTH", "MESSAGE"]),
            vec!["a-long-name".into(), "Healthy".into(), String::new()],
            vec!["b".into(), "Degraded".into(), "crash".into()],
        ]);
        assert_eq!(
            text,
            "NAME         HEALTH    MESSAGE\na-long-name  Healthy\nb            Degraded  crash\n"
        );
    }
}
