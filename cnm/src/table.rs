//! Plain-text tables: each column as wide as its widest cell, columns three spaces apart, no
//! blanks at the end of a line.

/// Rows of cells, the first of which may be a header.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first row is `header`.
    pub fn new(header: &[&str]) -> Self {
        Table {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The aligned text, one line per row.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                let width = |r: &Vec<String>| r.get(c).map_or(0, |s| s.chars().count());
                self.rows.iter().map(width).max().unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(cell);
                let pad = width - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_lines_end_without_blanks() {
        let mut t = Table::new(&["NAME", "DRIVER", "PORTS"]);
        t.row(vec!["a-long-name".into(), "x".into(), String::new()]);
        t.row(vec!["b".into(), "cnm-bridge".into(), "80".into()]);
        assert_eq!(
            t.render(),
            "NAME          DRIVER       PORTS\n\
             a-long-name   x\n\
             b             cnm-bridge   80\n"
        );
    }

    #[test]
    fn a_table_of_no_rows_is_its_header() {
        assert_eq!(Table::new(&["A", "B"]).render(), "A   B\n");
        assert_eq!(Table::default().render(), "");
    }
}
