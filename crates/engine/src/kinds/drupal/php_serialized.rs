//! PHP's `serialize()` format, read (never written): Drupal keeps its enabled extensions and
//! their schema versions as serialized PHP values. The input is a site's data, so the reader
//! is bounded in depth and in the sizes it believes.

#[derive(Debug, Clone, PartialEq)]
pub enum PhpValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Vec<u8>),
    /// Keys in order (an array's keys are ints or strings).
    Array(Vec<(PhpValue, PhpValue)>),
    /// An object: its class and properties.
    Object(String, Vec<(PhpValue, PhpValue)>),
    /// A back-reference (`r:` or `R:`), not followed.
    Reference,
}

impl PhpValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PhpValue::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            PhpValue::Int(n) => Some(*n),
            PhpValue::Str(_) => self.as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// An array's value under a string key.
    pub fn get(&self, key: &str) -> Option<&PhpValue> {
        match self {
            PhpValue::Array(entries) | PhpValue::Object(_, entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(PhpValue, PhpValue)] {
        match self {
            PhpValue::Array(entries) | PhpValue::Object(_, entries) => entries,
            _ => &[],
        }
    }

    /// A key as text (`i:3` as "3").
    pub fn key_text(&self) -> Option<String> {
        match self {
            PhpValue::Int(n) => Some(n.to_string()),
            _ => self.as_str().map(str::to_string),
        }
    }
}

const MAX_DEPTH: usize = 64;

/// Parses one serialized value; trailing bytes are an error.
pub fn unserialize(input: &[u8]) -> Result<PhpValue, String> {
    let mut reader = Reader { input, at: 0 };
    let value = reader.value(0)?;
    if reader.at != input.len() {
        return Err(format!("trailing bytes at offset {}", reader.at));
    }
    Ok(value)
}

struct Reader<'a> {
    input: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn fail<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at offset {}", self.at))
    }

    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .input
            .get(self.at)
            .ok_or_else(|| format!("unexpected end at offset {}", self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn expect(&mut self, want: u8) -> Result<(), String> {
        if self.byte()? != want {
            self.at -= 1;
            return self.fail(&format!("expected {:?}", want as char));
        }
        Ok(())
    }

    /// Bytes up to (not including) `end`, which is consumed.
    fn until(&mut self, end: u8) -> Result<&[u8], String> {
        let start = self.at;
        let len = self.input[start..]
            .iter()
            .position(|b| *b == end)
            .ok_or_else(|| format!("no {:?} after offset {start}", end as char))?;
        self.at = start + len + 1;
        Ok(&self.input[start..start + len])
    }

    fn number<T: std::str::FromStr>(&mut self, end: u8) -> Result<T, String> {
        let start = self.at;
        let text = self.until(end)?;
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("bad number at offset {start}"))
    }

    fn string_body(&mut self) -> Result<Vec<u8>, String> {
        let len: usize = self.number(b':')?;
        self.expect(b'"')?;
        if len > self.input.len() - self.at {
            return self.fail("string longer than its input");
        }
        let bytes = self.input[self.at..self.at + len].to_vec();
        self.at += len;
        self.expect(b'"')?;
        Ok(bytes)
    }

    fn entries(&mut self, depth: usize) -> Result<Vec<(PhpValue, PhpValue)>, String> {
        let count: usize = self.number(b':')?;
        self.expect(b'{')?;
        // Each entry takes at least 4 bytes (`i:0;N;`): a count beyond that is a lie.
        if count > (self.input.len() - self.at) / 4 {
            return self.fail("more entries than the input can hold");
        }
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let key = self.value(depth + 1)?;
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.expect(b'}')?;
        Ok(entries)
    }

    fn value(&mut self, depth: usize) -> Result<PhpValue, String> {
        if depth > MAX_DEPTH {
            return self.fail("nested too deeply");
        }
        let tag = self.byte()?;
        if tag == b'N' {
            self.expect(b';')?;
            return Ok(PhpValue::Null);
        }
        self.expect(b':')?;
        Ok(match tag {
            b'b' => match self.until(b';')? {
                b"0" => PhpValue::Bool(false),
                b"1" => PhpValue::Bool(true),
                _ => return self.fail("bad boolean"),
            },
            b'i' => PhpValue::Int(self.number(b';')?),
            b'd' => PhpValue::Float(self.number(b';')?),
            b's' => {
                let bytes = self.string_body()?;
                self.expect(b';')?;
                PhpValue::Str(bytes)
            }
            b'a' => PhpValue::Array(self.entries(depth)?),
            b'O' => {
                let class = String::from_utf8_lossy(&self.string_body()?).into_owned();
                self.expect(b':')?;
                PhpValue::Object(class, self.entries(depth)?)
            }
            b'r' | b'R' => {
                self.until(b';')?;
                PhpValue::Reference
            }
            _ => {
                self.at -= 2;
                return self.fail("unknown type");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drupal_values_are_read() {
        let extension = br#"a:3:{s:6:"module";a:2:{s:5:"block";i:0;s:8:"standard";i:1000;}s:5:"theme";a:1:{s:7:"olivero";i:0;}s:7:"profile";s:8:"standard";}"#;
        let value = unserialize(extension).unwrap();
        let modules: Vec<String> = value
            .get("module")
            .unwrap()
            .entries()
            .iter()
            .filter_map(|(k, _)| k.key_text())
            .collect();
        assert_eq!(modules, ["block", "standard"]);
        assert_eq!(value.get("profile").unwrap().as_str(), Some("standard"));
        assert_eq!(unserialize(b"i:8001;").unwrap().as_int(), Some(8001));
        assert_eq!(
            unserialize(b"s:4:\"10.2\";").unwrap().as_str(),
            Some("10.2")
        );
        // Lengths are bytes, not characters.
        assert_eq!(
            unserialize("s:2:\"é\";".as_bytes()).unwrap().as_str(),
            Some("é")
        );
        assert!(matches!(
            unserialize(br#"O:8:"stdClass":1:{s:1:"a";b:1;}"#).unwrap(),
            PhpValue::Object(class, _) if class == "stdClass"
        ));
    }

    #[test]
    fn hostile_input_is_refused_not_believed() {
        for bad in [
            &b"s:99:\"ab\";"[..],
            b"a:4000000000:{}",
            b"i:12",
            b"x:1;",
            b"s:1:\"a\";junk",
            b"",
        ] {
            assert!(
                unserialize(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = "a:1:{i:0;".repeat(100) + "N;" + &"}".repeat(100);
        assert!(unserialize(deep.as_bytes()).is_err());
    }
}
