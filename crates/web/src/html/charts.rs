//! Charts drawn on the server as SVG: no script, no library, readable without colour.

/// One bar of a bar chart.
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub label: String,
    pub failed: bool,
}

pub struct BarChart {
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
    /// The value at the top of the scale, for its label.
    pub max_label: String,
}

/// A bar per value, scaled to the largest; `values` are (label, value, failed).
pub fn bars(values: &[(String, f64, bool)], unit: impl Fn(f64) -> String) -> BarChart {
    let (width, height) = (600.0, 120.0);
    let max = values
        .iter()
        .map(|(_, v, _)| *v)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let slot = width / values.len().max(1) as f64;
    let bars = values
        .iter()
        .enumerate()
        .map(|(i, (label, v, failed))| {
            let h = (v / max * (height - 4.0)).max(1.0);
            Bar {
                x: i as f64 * slot + slot * 0.1,
                y: height - h,
                width: (slot * 0.8).max(1.0),
                height: h,
                label: format!("{label}: {}", unit(*v)),
                failed: *failed,
            }
        })
        .collect();
    BarChart {
        width,
        height,
        bars,
        max_label: unit(max),
    }
}

/// One row of a horizontal bar list: a label, its value as people read it, and the bar's
/// length in percent of the largest.
pub struct Row {
    pub label: String,
    pub value: String,
    pub percent: f64,
}

/// Rows scaled to the largest value; `values` are (label, value).
pub fn rows(values: &[(String, f64)], unit: impl Fn(f64) -> String) -> Vec<Row> {
    let max = values
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    values
        .iter()
        .map(|(label, v)| Row {
            label: label.clone(),
            value: unit(*v),
            percent: (v / max * 100.0).max(0.5),
        })
        .collect()
}

/// Seconds for people: "850 ms", "12.3 s", "4.1 min".
pub fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value() {
        let chart = bars(
            &[("a".into(), 1.0, false), ("b".into(), 4.0, true)],
            seconds,
        );
        assert_eq!(chart.bars.len(), 2);
        assert!((chart.bars[1].height - 116.0).abs() < 1e-9);
        assert!((chart.bars[0].height - 29.0).abs() < 1e-9);
        assert!(chart.bars[1].failed);
        assert_eq!(chart.max_label, "4.0 s");
        assert_eq!(bars(&[], seconds).bars.len(), 0);
    }

    #[test]
    fn rows_scale_to_the_largest_value() {
        let r = rows(&[("a".into(), 50.0), ("b".into(), 200.0)], |v| {
            format!("{v}")
        });
        assert!((r[0].percent - 25.0).abs() < 1e-9);
        assert!((r[1].percent - 100.0).abs() < 1e-9);
        assert_eq!(r[1].value, "200");
    }
}
