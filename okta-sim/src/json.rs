//! A minimal streaming JSON writer: rendering events straight into the page buffer is what lets
//! the simulator serve a million events quickly without keeping them all rendered in memory.

use std::fmt::Write;

pub(crate) struct JsonOut<'a> {
    buf: &'a mut String,
    needs_comma: bool,
}

impl<'a> JsonOut<'a> {
    pub(crate) fn new(buf: &'a mut String) -> Self {
        JsonOut {
            buf,
            needs_comma: false,
        }
    }

    fn separate(&mut self) {
        if self.needs_comma {
            self.buf.push(',');
        }
    }

    pub(crate) fn begin_object(&mut self) -> &mut Self {
        self.separate();
        self.buf.push('{');
        self.needs_comma = false;
        self
    }

    pub(crate) fn end_object(&mut self) -> &mut Self {
        self.buf.push('}');
        self.needs_comma = true;
        self
    }

    pub(crate) fn begin_array(&mut self) -> &mut Self {
        self.separate();
        self.buf.push('[');
        self.needs_comma = false;
        self
    }

    pub(crate) fn end_array(&mut self) -> &mut Self {
        self.buf.push(']');
        self.needs_comma = true;
        self
    }

    pub(crate) fn key(&mut self, key: &str) -> &mut Self {
        self.separate();
        write_escaped(self.buf, key);
        self.buf.push(':');
        self.needs_comma = false;
        self
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.separate();
        write_escaped(self.buf, value);
        self.needs_comma = true;
        self
    }

    pub(crate) fn opt_str(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(v) => self.str(v),
            None => self.null(),
        }
    }

    pub(crate) fn null(&mut self) -> &mut Self {
        self.raw("null")
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        self.raw(if value { "true" } else { "false" })
    }

    pub(crate) fn int(&mut self, value: i64) -> &mut Self {
        self.separate();
        let _ = write!(self.buf, "{value}");
        self.needs_comma = true;
        self
    }

    pub(crate) fn float(&mut self, value: f64) -> &mut Self {
        self.separate();
        let _ = write!(self.buf, "{value:.4}");
        self.needs_comma = true;
        self
    }

    /// Pre-rendered JSON (a literal or an already valid document).
    pub(crate) fn raw(&mut self, json: &str) -> &mut Self {
        self.separate();
        self.buf.push_str(json);
        self.needs_comma = true;
        self
    }

    pub(crate) fn field_str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key).str(value)
    }

    pub(crate) fn field_opt(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        self.key(key).opt_str(value)
    }

    pub(crate) fn field_null(&mut self, key: &str) -> &mut Self {
        self.key(key).null()
    }
}

fn write_escaped(buf: &mut String, s: &str) {
    buf.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        buf.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => buf.push_str("\\\""),
                '\\' => buf.push_str("\\\\"),
                '\n' => buf.push_str("\\n"),
                '\r' => buf.push_str("\\r"),
                '\t' => buf.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(buf, "\\u{:04x}", c as u32);
                }
                c => buf.push(c),
            }
        }
    }
    buf.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_nested_json_with_escapes() {
        let mut buf = String::new();
        let mut out = JsonOut::new(&mut buf);
        out.begin_object()
            .field_str("a", "say \"hi\"\n")
            .field_null("b")
            .key("c")
            .begin_array()
            .int(1)
            .bool(false)
            .begin_object()
            .end_object()
            .end_array()
            .key("d")
            .float(1.5)
            .end_object();
        let parsed: serde_json::Value = serde_json::from_str(&buf).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"a": "say \"hi\"\n", "b": null, "c": [1, false, {}], "d": 1.5})
        );
    }
}
