//! SVG charts, drawn with plotters' SVG backend, for the status page and
//! `report --html`. Each returns the `<svg>` element as text, to be put
//! inline in a page: nothing is fetched when the page is opened.

use plotters::prelude::*;

const SIZE: (u32, u32) = (720, 260);
/// Room right of the plot for half of the last x label (a date is about
/// 60 px wide), which is centred on the plot's right edge.
const RIGHT_MARGIN: u32 = 45;
const MAX_TICKS: usize = 6;
/// Each point is marked: a line needs two points to show at all.
const POINT_RADIUS: u32 = 3;

/// The series' colours, in order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One named line of (x, y) points.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Lines over a shared x axis; `x_label` formats an x value (a time, a
/// pass number) and `x_unit` is the step below which two x values would
/// read alike (a day, a pass, a second): only ticks on its multiples are
/// labelled, so no label repeats. Every point is marked too, so a line of one point
/// (one pass) still shows. `limit`, if given, is drawn as a dashed red
/// line (a quota). An empty chart says so rather than drawing bare axes.
pub fn lines(
    title: &str,
    y_desc: &str,
    series: &[Line],
    limit: Option<(&str, f64)>,
    x_unit: f64,
    x_label: &dyn Fn(f64) -> String,
) -> String {
    let xs = series.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !x0.is_finite() {
        return empty(title);
    }
    let unit = if x_unit > 0.0 { x_unit } else { 1.0 };
    // A single x: its point in the middle, with no other multiple of the
    // unit on the axis (a one-pass chart names no pass it does not have).
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - unit / 2.0, x1 + unit / 2.0)
    };
    // plotters puts its ticks on round fractions too: those between two
    // multiples of the unit would repeat their neighbour's label.
    let on_unit = |x: f64| ((x / unit) - (x / unit).round()).abs() < 1e-6;
    let y_max = series
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(limit.map(|l| l.1))
        .fold(0.0_f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    draw(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .margin_right(RIGHT_MARGIN)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_labels(MAX_TICKS)
            .y_labels(6)
            .x_label_formatter(&|x| {
                if on_unit(*x) {
                    x_label(*x)
                } else {
                    String::new()
                }
            })
            .y_desc(y_desc)
            .draw()?;
        for (i, l) in series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().copied(),
                    colour.stroke_width(2),
                ))?
                .label(l.name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], colour));
            chart.draw_series(
                l.points
                    .iter()
                    .map(|&p| Circle::new(p, POINT_RADIUS, colour.filled())),
            )?;
        }
        if let Some((name, y)) = limit {
            chart
                .draw_series(DashedLineSeries::new([(x0, y), (x1, y)], 6, 4, RED.into()))?
                .label(name)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        Ok(())
    })
}

/// One bar per labelled value, in the order given.
pub fn bars(title: &str, y_desc: &str, bars: &[(String, f64)]) -> String {
    if bars.is_empty() {
        return empty(title);
    }
    let y_max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.15 } else { 1.0 };
    // A segmented 0..n has a slot for n itself: end one short of it.
    let last = (bars.len() as u32).saturating_sub(1).max(1);
    draw(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0..last).into_segmented(), 0.0..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len())
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => bars
                    .get(*i as usize)
                    .map(|b| b.0.clone())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .y_desc(y_desc)
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(PALETTE[0].filled())
                .margin(4)
                .data(bars.iter().enumerate().map(|(i, b)| (i as u32, b.1))),
        )?;
        Ok(())
    })
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(f: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> DrawResult) -> String {
    let mut svg = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string().into())
            .and_then(|_| f(&root))
            .and_then(|_| root.present().map_err(|e| e.to_string().into()))
    };
    match drawn {
        Ok(()) => svg,
        // A chart that cannot be drawn must not take the page with it.
        Err(e) => format!(
            "<p class=\"chart-error\">chart not drawn: {}</p>",
            crate::observe::charts::escape(&e.to_string())
        ),
    }
}

fn empty(title: &str) -> String {
    format!(
        "<p class=\"chart-empty\">{}: no data yet</p>",
        escape(title)
    )
}

/// Text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_is_one_inline_svg_with_its_title_and_legend() {
        let svg = lines(
            "Requests",
            "req/s",
            &[Line {
                name: "rate".into(),
                points: vec![(0.0, 1.0), (10.0, 2.0)],
            }],
            Some(("quota", 3.0)),
            1.0,
            &|x| format!("{x:.0}s"),
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("Requests") && svg.contains("quota") && svg.contains("rate"));
        assert!(!svg.contains("href"));
    }

    #[test]
    fn no_data_says_so_and_text_is_escaped() {
        assert!(lines("<x>", "", &[], None, 1.0, &|x| x.to_string()).contains("&lt;x&gt;: no data"));
        assert!(bars("t", "", &[]).contains("no data"));
        let svg = bars(
            "Views",
            "questions",
            &[("0-10".into(), 3.0), ("10+".into(), 1.0)],
        );
        assert!(svg.starts_with("<svg") && svg.contains("0-10"), "{svg}");
    }

    /// Each `<text>` of an SVG: its anchor point, anchor, font size and
    /// content. Rotated texts (the y axis' name) are left out.
    fn texts(svg: &str) -> Vec<(f64, String, f64, String)> {
        let attr = |tag: &str, name: &str| {
            let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            Some(tag[at..].split('"').next()?.to_string())
        };
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let (tag, rest) = t.split_once('>')?;
                if tag.contains("transform=") {
                    return None;
                }
                let text = rest.split("</text>").next()?.trim().to_string();
                Some((
                    attr(tag, "x")?.parse().ok()?,
                    attr(tag, "text-anchor")?,
                    attr(tag, "font-size")?.parse().ok()?,
                    text,
                ))
            })
            .collect()
    }

    /// Whether every text fits across the view box, at a generous 0.6 em a
    /// character.
    fn texts_fit(svg: &str) -> Result<(), String> {
        let width = f64::from(SIZE.0);
        for (x, anchor, size, text) in texts(svg) {
            let w = text.chars().count() as f64 * size * 0.6;
            let (left, right) = match anchor.as_str() {
                "middle" => (x - w / 2.0, x + w / 2.0),
                "end" => (x - w, x),
                _ => (x, x + w),
            };
            if left < 0.0 || right > width {
                return Err(format!(
                    "{text:?} spans {left:.0}..{right:.0} of 0..{width}"
                ));
            }
        }
        Ok(())
    }

    fn day(n: f64) -> String {
        let d = chrono::NaiveDate::from_ymd_opt(2025, 11, 14).unwrap();
        (d + chrono::Days::new(n.round() as u64))
            .format("%Y-%m-%d")
            .to_string()
    }

    #[test]
    fn a_date_axis_labels_each_day_once_and_its_last_label_is_not_clipped() {
        let per_day = Line {
            name: "python".into(),
            points: vec![(0.0, 3.0), (1.0, 5.0), (2.0, 1.0)],
        };
        let svg = lines("Asked", "questions", &[per_day], None, 1.0, &day);
        let days: Vec<String> = texts(&svg)
            .into_iter()
            .map(|t| t.3)
            .filter(|t| t.starts_with("2025-"))
            .collect();
        assert_eq!(days, ["2025-11-14", "2025-11-15", "2025-11-16"], "{svg}");
        texts_fit(&svg).unwrap();
        // A long span keeps to a few distinct labels.
        let long = Line {
            name: "python".into(),
            points: (0..40).map(|d| (f64::from(d), 1.0)).collect(),
        };
        let svg = lines("Asked", "questions", &[long], None, 1.0, &day);
        let mut days: Vec<String> = texts(&svg)
            .into_iter()
            .map(|t| t.3)
            .filter(|t| t.starts_with("2025-"))
            .collect();
        assert!((2..=MAX_TICKS).contains(&days.len()), "{days:?}");
        let n = days.len();
        days.dedup();
        assert_eq!(days.len(), n, "{days:?}");
        texts_fit(&svg).unwrap();
    }

    #[test]
    fn a_line_of_one_point_is_drawn_as_a_point_on_its_own_tick() {
        let one = Line {
            name: "s".into(),
            points: vec![(3.0, 25.0)],
        };
        let svg = lines("Unanswered", "%", &[one], None, 1.0, &|x| {
            format!("pass {x:.0}")
        });
        assert_eq!(svg.matches("<circle").count(), 1, "{svg}");
        let passes: Vec<String> = texts(&svg)
            .into_iter()
            .map(|t| t.3)
            .filter(|t| t.starts_with("pass"))
            .collect();
        assert_eq!(passes, ["pass 3"], "{svg}");
        texts_fit(&svg).unwrap();
    }
}
