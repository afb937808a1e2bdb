//! The speed table (issue 17): one row per figure, each measured in the
//! run that prints it, beside its same-run baseline, its goal, and whether
//! the figure meets it. The `jobs` and `load` benches each fill their rows;
//! the `speed` bench runs both and prints the whole table.

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub figure: String,
    /// Tidepool's figure (with the details that qualify it).
    pub tidepool: String,
    /// The baseline measured in the same run, or `-`.
    pub baseline: String,
    /// Tidepool against the baseline, or `-`.
    pub ratio: String,
    /// The goal, as the issue states it.
    pub goal: &'static str,
    /// Whether the figure meets the goal.
    pub met: bool,
}

impl Row {
    /// A row without a baseline.
    pub fn alone(figure: String, tidepool: String, goal: &'static str, met: bool) -> Row {
        Row {
            figure,
            tidepool,
            baseline: "-".into(),
            ratio: "-".into(),
            goal,
            met,
        }
    }
}

/// The rows as a Markdown table.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| figure | tidepool | baseline (same run) | ratio | goal | met |\n\
         | --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.figure,
            r.tidepool,
            r.baseline,
            r.ratio,
            r.goal,
            if r.met { "yes" } else { "no" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_one_line_with_all_six_cells() {
        let rows = [
            Row::alone("a".into(), "1/s".into(), ">= 2/s", false),
            Row {
                figure: "b".into(),
                tidepool: "3/s".into(),
                baseline: "4/s".into(),
                ratio: "0.75".into(),
                goal: ">= 0.5",
                met: true,
            },
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2], "| a | 1/s | - | - | >= 2/s | no |");
        assert_eq!(lines[3], "| b | 3/s | 4/s | 0.75 | >= 0.5 | yes |");
        assert!(lines.iter().all(|l| l.matches('|').count() == 7));
    }
}
