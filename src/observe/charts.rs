//! SVG charts, drawn with plotters' SVG backend, for the status page and
//! `report --html`. Each returns the `<svg>` element as text, to be put
//! inline in a page: nothing is fetched when the page is opened.

use plotters::prelude::*;

const SIZE: (u32, u32) = (720, 260);

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
/// pass number). `limit`, if given, is drawn as a dashed red line (a
/// quota). An empty chart says so rather than drawing bare axes.
pub fn lines(
    title: &str,
    y_desc: &str,
    series: &[Line],
    limit: Option<(&str, f64)>,
    x_label: &dyn Fn(f64) -> String,
) -> String {
    let xs = series.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !x0.is_finite() {
        return empty(title);
    }
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
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
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|x| x_label(*x))
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
            &|x| format!("{x:.0}s"),
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("Requests") && svg.contains("quota") && svg.contains("rate"));
        assert!(!svg.contains("href"));
    }

    #[test]
    fn no_data_says_so_and_text_is_escaped() {
        assert!(lines("<x>", "", &[], None, &|x| x.to_string()).contains("&lt;x&gt;: no data"));
        assert!(bars("t", "", &[]).contains("no data"));
        let svg = bars(
            "Views",
            "questions",
            &[("0-10".into(), 3.0), ("10+".into(), 1.0)],
        );
        assert!(svg.starts_with("<svg") && svg.contains("0-10"), "{svg}");
    }
}
