//! The figures a run produces, each with its target and verdict, printed as one table.

use std::fmt::Display;

pub enum Verdict {
    Pass,
    Fail,
    /// A figure reported for context, without a target.
    Info,
}

pub struct Figure {
    pub name: String,
    pub value: String,
    pub target: String,
    pub verdict: Verdict,
}

impl Figure {
    pub fn checked(name: &str, value: impl Display, target: &str, pass: bool) -> Figure {
        Figure {
            name: name.to_owned(),
            value: value.to_string(),
            target: target.to_owned(),
            verdict: if pass { Verdict::Pass } else { Verdict::Fail },
        }
    }

    pub fn info(name: &str, value: impl Display) -> Figure {
        Figure {
            name: name.to_owned(),
            value: value.to_string(),
            target: "-".to_owned(),
            verdict: Verdict::Info,
        }
    }

    fn verdict(&self) -> &'static str {
        match self.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Info => "info",
        }
    }
}

/// Collects figures as they are measured and echoes each one, so a long run shows progress.
#[derive(Default)]
pub struct Report {
    figures: Vec<Figure>,
}

impl Report {
    pub fn add(&mut self, figure: Figure) {
        eprintln!(
            "  {}: {} (target {}) {}",
            figure.name,
            figure.value,
            figure.target,
            figure.verdict()
        );
        self.figures.push(figure);
    }

    pub fn failures(&self) -> usize {
        self.figures
            .iter()
            .filter(|f| matches!(f.verdict, Verdict::Fail))
            .count()
    }

    /// A Markdown table, ready for docs/performance.md.
    pub fn print(&self) {
        println!("| figure | measured | target | verdict |");
        println!("| --- | --- | --- | --- |");
        for f in &self.figures {
            println!(
                "| {} | {} | {} | {} |",
                f.name,
                f.value,
                f.target,
                f.verdict()
            );
        }
        let checked = self
            .figures
            .iter()
            .filter(|f| !matches!(f.verdict, Verdict::Info))
            .count();
        println!(
            "\n{} of {checked} targets met, {} missed",
            checked - self.failures(),
            self.failures()
        );
    }
}

/// Events per second with a thousands separator, for readability.
pub fn per_sec(count: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        count / secs
    } else {
        0.0
    }
}

pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
