//! The JSON reader for everything `shared` parses: JOSE headers, access-token and assertion
//! claims, JWKS, Upstash replies — and, through [`from_str`], the edge's configuration.
//!
//! A `serde::Deserializer`, so the types keep their `#[derive(Deserialize)]` and with it serde's
//! own rules (duplicate keys refused, `deny_unknown_fields`, defaults). It exists for the edge's
//! wasm: serde_json's reader, its `Value` and its error messages were the largest part of the
//! Worker (its errors format every unexpected value, floats included, which links core's float
//! formatting). This one keeps no position bookkeeping beyond a byte offset and words its type
//! errors without printing the value.
//!
//! It accepts exactly what `serde_json::from_slice` accepts for the same type, and refuses what
//! it refuses (property-tested against it in this module's tests): strict JSON (RFC 8259), only
//! ` `, `\t`, `\n`, `\r` as whitespace, nothing after the value, strings valid UTF-8 with paired
//! surrogate escapes and no raw control characters, integers without leading zeros, no float or
//! out-of-range number where an integer is expected (`-0` included, as serde_json reads it as a
//! float), unit enum variants as `"name"` or `{"name":null}`, typed nesting up to serde_json's
//! limit. Ignored members are checked for well-formedness as serde_json checks them (their
//! strings' escapes, not their UTF-8), without recursion, so their nesting costs no stack.
//!
//! One deliberate difference: a struct must be a JSON object, where serde_json also takes an
//! array of its fields in order (see `deserialize_struct`).
//!
//! Not supported, because nothing here needs them: floats (a float where a type asks for one, or
//! reaches [`serde::Deserializer::deserialize_any`], is an error), byte strings, and map keys of
//! types other than strings.

use serde::de::value::{BorrowedStrDeserializer, StrDeserializer};
use serde::de::{self, DeserializeSeed, Unexpected, Visitor};

/// Why input was refused: malformed JSON ([`Error::is_syntax`]) or JSON of the wrong shape,
/// with the byte offset where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    what: What,
    at: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum What {
    Syntax(&'static str),
    Data(String),
}

impl Error {
    fn syntax(msg: &'static str) -> Self {
        Self {
            what: What::Syntax(msg),
            at: None,
        }
    }

    /// Whether the input is not JSON at all (rather than JSON of another shape).
    pub fn is_syntax(&self) -> bool {
        matches!(self.what, What::Syntax(_))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.what {
            What::Syntax(msg) => f.write_str(msg)?,
            What::Data(msg) => f.write_str(msg)?,
        }
        match self.at {
            Some(at) => write!(f, " at byte {at}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Error {}

/// What kind of value was met, without the value: serde's own wording prints it, which for a
/// float means linking float formatting into every build that parses JSON.
fn kind(unexpected: &Unexpected<'_>) -> &'static str {
    match unexpected {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) | Unexpected::Float(_) => "a number",
        Unexpected::Char(_) | Unexpected::Str(_) => "a string",
        Unexpected::Unit => "null",
        Unexpected::Seq => "an array",
        Unexpected::Map => "an object",
        _ => "another value",
    }
}

impl de::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self {
            what: What::Data(msg.to_string()),
            at: None,
        }
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid type: {}, expected {expected}",
            kind(&unexpected)
        ))
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!(
            "invalid value: {}, expected {expected}",
            kind(&unexpected)
        ))
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Reads a `T` from JSON bytes; anything after the value but whitespace is an error.
pub fn from_slice<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T> {
    let mut reader = Reader {
        input,
        pos: 0,
        scratch: Vec::new(),
    };
    let top = At {
        reader: &mut reader,
        depth: MAX_DEPTH,
    };
    let value = T::deserialize(top).and_then(|value| match reader.skip_ws() {
        None => Ok(value),
        Some(_) => Err(Error::syntax("trailing characters")),
    });
    value.map_err(|mut e| {
        e.at.get_or_insert(reader.pos);
        e
    })
}

/// [`from_slice`] for text.
pub fn from_str<'de, T: de::Deserialize<'de>>(input: &'de str) -> Result<T> {
    from_slice(input.as_bytes())
}

/// How deep typed arrays and objects may nest (serde_json's limit); ignored values may nest
/// without limit, as they are skipped without recursion.
const MAX_DEPTH: u8 = 128;

struct Reader<'de> {
    input: &'de [u8],
    pos: usize,
    /// Unescaped string bytes, for strings with escapes.
    scratch: Vec<u8>,
}

/// A string as read: borrowed from the input when it had no escapes.
enum Text<'de, 's> {
    Borrowed(&'de str),
    Copied(&'s str),
}

/// A JSON integer, as serde_json hands it to a visitor.
enum Integer {
    Unsigned(u64),
    Signed(i64),
}

impl<'de> Reader<'de> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    /// Skips whitespace and returns the next byte, not consumed.
    fn skip_ws(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
        self.peek()
    }

    fn value_start(&mut self) -> Result<u8> {
        self.skip_ws()
            .ok_or(Error::syntax("EOF while parsing a value"))
    }

    fn expect(&mut self, byte: u8, msg: &'static str) -> Result<()> {
        match self.skip_ws() {
            Some(b) if b == byte => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(Error::syntax(msg)),
        }
    }

    /// The rest of `null`, `true` or `false` after its first byte.
    fn ident(&mut self, rest: &[u8]) -> Result<()> {
        for &expected in rest {
            if self.next() != Some(expected) {
                return Err(Error::syntax("expected ident"));
            }
        }
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16> {
        let digits = self
            .input
            .get(self.pos..self.pos + 4)
            .ok_or(Error::syntax("EOF while parsing a string"))?;
        let mut n = 0u16;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(Error::syntax("invalid escape")),
            };
            n = n << 4 | u16::from(v);
        }
        self.pos += 4;
        Ok(n)
    }

    /// One escape after its `\`, appended to `scratch` (when given) as UTF-8. Surrogate escapes
    /// must pair up when the string is kept; an ignored string's are only checked for shape.
    fn escape(&mut self, out: Option<&mut Vec<u8>>) -> Result<()> {
        let byte = match self.next() {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let n = self.hex4()?;
                let Some(out) = out else { return Ok(()) };
                let c = match n {
                    0xDC00..=0xDFFF => return Err(Error::syntax("lone surrogate in hex escape")),
                    0xD800..=0xDBFF => {
                        if self.next() != Some(b'\\') || self.next() != Some(b'u') {
                            return Err(Error::syntax("unexpected end of hex escape"));
                        }
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(Error::syntax("lone surrogate in hex escape"));
                        }
                        let code =
                            0x1_0000 + ((u32::from(n) - 0xD800) << 10 | (u32::from(low) - 0xDC00));
                        char::from_u32(code).ok_or(Error::syntax("invalid escape"))?
                    }
                    _ => char::from_u32(u32::from(n)).ok_or(Error::syntax("invalid escape"))?,
                };
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Ok(());
            }
            Some(_) => return Err(Error::syntax("invalid escape")),
            None => return Err(Error::syntax("EOF while parsing a string")),
        };
        if let Some(out) = out {
            out.push(byte);
        }
        Ok(())
    }

    /// Skips the bytes of a string that need no look: all but `"`, `\` and control
    /// characters, in one scan.
    fn skip_plain(&mut self) {
        let rest = &self.input[self.pos..];
        self.pos += rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(rest.len());
    }

    /// A string after its opening quote.
    fn string<'s>(&'s mut self) -> Result<Text<'de, 's>> {
        self.scratch.clear();
        let mut start = self.pos;
        loop {
            self.skip_plain();
            match self.next() {
                Some(b'"') => {
                    let raw = &self.input[start..self.pos - 1];
                    let invalid = || Error::syntax("invalid unicode code point");
                    if self.scratch.is_empty() {
                        return std::str::from_utf8(raw)
                            .map(Text::Borrowed)
                            .map_err(|_| invalid());
                    }
                    self.scratch.extend_from_slice(raw);
                    return std::str::from_utf8(&self.scratch)
                        .map(Text::Copied)
                        .map_err(|_| invalid());
                }
                Some(b'\\') => {
                    let mut scratch = std::mem::take(&mut self.scratch);
                    scratch.extend_from_slice(&self.input[start..self.pos - 1]);
                    let escaped = self.escape(Some(&mut scratch));
                    self.scratch = scratch;
                    escaped?;
                    start = self.pos;
                }
                Some(0x00..=0x1f) => {
                    return Err(Error::syntax("control character while parsing a string"))
                }
                Some(_) => {}
                None => return Err(Error::syntax("EOF while parsing a string")),
            }
        }
    }

    /// Skips a string after its opening quote. Like serde_json, an ignored string's bytes are
    /// not checked for UTF-8: only its escapes and control characters.
    fn skip_string(&mut self) -> Result<()> {
        loop {
            self.skip_plain();
            match self.next() {
                Some(b'"') => return Ok(()),
                Some(b'\\') => self.escape(None)?,
                Some(0x00..=0x1f) => {
                    return Err(Error::syntax("control character while parsing a string"))
                }
                Some(_) => {}
                None => return Err(Error::syntax("EOF while parsing a string")),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Skips a number (at its first byte, `-` or a digit), checking the JSON grammar.
    fn skip_number(&mut self) -> Result<()> {
        let invalid = Error::syntax("invalid number");
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.next() {
            Some(b'0') if matches!(self.peek(), Some(b'0'..=b'9')) => return Err(invalid),
            Some(b'0') => {}
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(invalid),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(invalid);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(invalid);
            }
        }
        Ok(())
    }

    /// A number where an integer is expected: one that fits `u64` (or `i64` when negative), as
    /// serde_json reads it. A fraction, an exponent, `-0` or a larger magnitude is what
    /// serde_json reads as a float, which no integer accepts: an error here.
    fn integer(&mut self) -> Result<Integer> {
        let start = self.pos;
        self.skip_number()?;
        let text = &self.input[start..self.pos];
        let (negative, digits) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text),
        };
        let not_integer =
            || <Error as de::Error>::custom("invalid type: a number, expected an integer");
        let mut magnitude: u64 = 0;
        for &d in digits {
            if !d.is_ascii_digit() {
                return Err(not_integer());
            }
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(d - b'0')))
                .ok_or_else(not_integer)?;
        }
        if !negative {
            return Ok(Integer::Unsigned(magnitude));
        }
        match magnitude {
            0 => Err(not_integer()),
            m if m <= 1 << 63 => Ok(Integer::Signed(0i64.wrapping_sub_unsigned(m))),
            _ => Err(not_integer()),
        }
    }

    /// Skips one value of any shape, iteratively (a stack of open brackets), so that nesting in
    /// members nobody reads costs no recursion.
    fn skip_value(&mut self) -> Result<()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            match self.value_start()? {
                b'n' => {
                    self.pos += 1;
                    self.ident(b"ull")?;
                }
                b't' => {
                    self.pos += 1;
                    self.ident(b"rue")?;
                }
                b'f' => {
                    self.pos += 1;
                    self.ident(b"alse")?;
                }
                b'-' | b'0'..=b'9' => self.skip_number()?,
                b'"' => {
                    self.pos += 1;
                    self.skip_string()?;
                }
                bracket @ (b'[' | b'{') => {
                    self.pos += 1;
                    open.push(bracket);
                    if !self.enter_ignored(bracket)? {
                        continue;
                    }
                }
                _ => return Err(Error::syntax("expected value")),
            }
            // A value is complete: close what it completes, then find the next value.
            loop {
                let Some(&bracket) = open.last() else {
                    return Ok(());
                };
                let close = if bracket == b'[' { b']' } else { b'}' };
                match self.skip_ws() {
                    Some(b) if b == close => {
                        self.pos += 1;
                        open.pop();
                    }
                    Some(b',') => {
                        self.pos += 1;
                        if bracket == b'{' {
                            self.ignored_key()?;
                        } else if self.skip_ws() == Some(b']') {
                            return Err(Error::syntax("trailing comma"));
                        }
                        break;
                    }
                    Some(_) => return Err(Error::syntax("expected `,` or a closing bracket")),
                    None => return Err(Error::syntax("EOF while parsing a value")),
                }
            }
        }
    }

    /// Just after an ignored `[` or `{`: `Ok(true)` when it closed at once (`[]`, `{}`), else
    /// positions the reader at its first value (past the first key, for an object).
    fn enter_ignored(&mut self, bracket: u8) -> Result<bool> {
        let close = if bracket == b'[' { b']' } else { b'}' };
        if self.skip_ws() == Some(close) {
            // Leave the closing bracket for the caller's closing loop.
            return Ok(true);
        }
        if bracket == b'{' {
            self.ignored_key()?;
        }
        Ok(false)
    }

    /// `"key":` inside an ignored object.
    fn ignored_key(&mut self) -> Result<()> {
        match self.skip_ws() {
            Some(b'"') => {
                self.pos += 1;
                self.skip_string()?;
                self.expect(b':', "expected `:`")
            }
            Some(b'}') => Err(Error::syntax("trailing comma")),
            _ => Err(Error::syntax("key must be a string")),
        }
    }

    fn enter(&mut self, depth: &mut u8) -> Result<()> {
        // As serde_json counts: the 128th level of typed nesting is refused.
        *depth = depth
            .checked_sub(1)
            .filter(|left| *left > 0)
            .ok_or(Error::syntax("recursion limit exceeded"))?;
        self.pos += 1;
        Ok(())
    }

    fn end_seq(&mut self) -> Result<()> {
        match self.skip_ws() {
            Some(b']') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(Error::syntax("trailing characters")),
            None => Err(Error::syntax("EOF while parsing a list")),
        }
    }

    fn end_map(&mut self) -> Result<()> {
        match self.skip_ws() {
            Some(b'}') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(Error::syntax("trailing characters")),
            None => Err(Error::syntax("EOF while parsing an object")),
        }
    }

    fn visit_text<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        match self.string()? {
            Text::Borrowed(s) => visitor.visit_borrowed_str(s),
            Text::Copied(s) => visitor.visit_str(s),
        }
    }

    fn visit_integer<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        match self.value_start()? {
            b'-' | b'0'..=b'9' => match self.integer()? {
                Integer::Unsigned(n) => visitor.visit_u64(n),
                Integer::Signed(n) => visitor.visit_i64(n),
            },
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    /// The error for a value of the wrong type at the reader (not consumed): its kind, as far
    /// as its first byte tells.
    fn invalid_type(&self, expected: &dyn de::Expected) -> Error {
        let unexpected = match self.peek() {
            Some(b'n') => Unexpected::Unit,
            Some(b't' | b'f') => Unexpected::Bool(false),
            Some(b'"') => Unexpected::Str(""),
            Some(b'[') => Unexpected::Seq,
            Some(b'{') => Unexpected::Map,
            Some(b'-' | b'0'..=b'9') => Unexpected::Unsigned(0),
            _ => return Error::syntax("expected value"),
        };
        de::Error::invalid_type(unexpected, expected)
    }

    fn seq<V: Visitor<'de>>(&mut self, visitor: V, depth: u8) -> Result<V::Value> {
        let mut depth = depth;
        self.enter(&mut depth)?;
        let value = visitor.visit_seq(Elements {
            reader: &mut *self,
            first: true,
            depth,
        })?;
        self.end_seq()?;
        Ok(value)
    }

    fn map<V: Visitor<'de>>(&mut self, visitor: V, depth: u8) -> Result<V::Value> {
        let mut depth = depth;
        self.enter(&mut depth)?;
        let value = visitor.visit_map(Members {
            reader: &mut *self,
            first: true,
            depth,
        })?;
        self.end_map()?;
        Ok(value)
    }
}

/// The reader at a value, with the nesting depth left.
struct At<'r, 'de> {
    reader: &'r mut Reader<'de>,
    depth: u8,
}

impl<'de> de::Deserializer<'de> for At<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let r = self.reader;
        match r.value_start()? {
            b'n' => {
                r.pos += 1;
                r.ident(b"ull")?;
                visitor.visit_unit()
            }
            b't' => {
                r.pos += 1;
                r.ident(b"rue")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                r.pos += 1;
                r.ident(b"alse")?;
                visitor.visit_bool(false)
            }
            b'"' => {
                r.pos += 1;
                r.visit_text(visitor)
            }
            b'[' => r.seq(visitor, self.depth),
            b'{' => r.map(visitor, self.depth),
            b'-' | b'0'..=b'9' => r.visit_integer(visitor),
            _ => Err(Error::syntax("expected value")),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.reader.value_start()? {
            b't' | b'f' => self.deserialize_any(visitor),
            _ => Err(self.reader.invalid_type(&visitor)),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_integer(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_integer(visitor)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_integer(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_integer(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_integer(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_integer(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_integer(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.visit_integer(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.reader.value_start()? {
            b'"' => {
                self.reader.pos += 1;
                self.reader.visit_text(visitor)
            }
            _ => Err(self.reader.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.reader.value_start()? {
            b'n' => {
                self.reader.pos += 1;
                self.reader.ident(b"ull")?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.reader.value_start()? {
            b'n' => self.deserialize_any(visitor),
            _ => Err(self.reader.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.reader.value_start()? {
            b'[' => self.reader.seq(visitor, self.depth),
            _ => Err(self.reader.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.reader.value_start()? {
            b'{' => self.reader.map(visitor, self.depth),
            _ => Err(self.reader.invalid_type(&visitor)),
        }
    }

    /// An object only. serde_json also takes an array of the fields in order; JOSE headers
    /// and claim sets must be objects (RFC 7515 §4, RFC 7519 §7.2), and not generating the
    /// positional reader for every struct keeps the wasm smaller.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.reader.value_start()? {
            b'"' => visitor.visit_enum(Variant {
                reader: self.reader,
                depth: self.depth,
                in_object: false,
            }),
            b'{' => {
                let mut depth = self.depth;
                self.reader.enter(&mut depth)?;
                let value = visitor.visit_enum(Variant {
                    reader: &mut *self.reader,
                    depth,
                    in_object: true,
                })?;
                self.reader.end_map()?;
                Ok(value)
            }
            _ => Err(self.reader.invalid_type(&visitor)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.reader.skip_value()?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! { i128 u128 f32 f64 bytes byte_buf }
}

/// The elements of an array.
struct Elements<'r, 'de> {
    reader: &'r mut Reader<'de>,
    first: bool,
    depth: u8,
}

impl Elements<'_, '_> {
    /// Whether another element follows (the reader then at it), past its `,`.
    fn has_next(&mut self) -> Result<bool> {
        match self.reader.skip_ws() {
            Some(b']') => Ok(false),
            Some(_) if self.first => {
                self.first = false;
                Ok(true)
            }
            Some(b',') => {
                self.reader.pos += 1;
                match self.reader.skip_ws() {
                    Some(b']') => Err(Error::syntax("trailing comma")),
                    Some(_) => Ok(true),
                    None => Err(Error::syntax("EOF while parsing a value")),
                }
            }
            Some(_) => Err(Error::syntax("expected `,` or `]`")),
            None => Err(Error::syntax("EOF while parsing a list")),
        }
    }
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if !self.has_next()? {
            return Ok(None);
        }
        seed.deserialize(At {
            reader: &mut *self.reader,
            depth: self.depth,
        })
        .map(Some)
    }
}

/// The members of an object.
struct Members<'r, 'de> {
    reader: &'r mut Reader<'de>,
    first: bool,
    depth: u8,
}

impl Members<'_, '_> {
    /// Whether another member follows (the reader then past its key's opening quote).
    fn has_next(&mut self) -> Result<bool> {
        let first = std::mem::replace(&mut self.first, false);
        match self.reader.skip_ws() {
            Some(b'}') => return Ok(false),
            Some(b',') if !first => {
                self.reader.pos += 1;
                match self.reader.skip_ws() {
                    Some(b'"') => {}
                    Some(b'}') => return Err(Error::syntax("trailing comma")),
                    Some(_) => return Err(Error::syntax("key must be a string")),
                    None => return Err(Error::syntax("EOF while parsing a value")),
                }
            }
            Some(b'"') if first => {}
            Some(_) if first => return Err(Error::syntax("key must be a string")),
            Some(_) => return Err(Error::syntax("expected `,` or `}`")),
            None => return Err(Error::syntax("EOF while parsing an object")),
        }
        self.reader.pos += 1;
        Ok(true)
    }
}

impl<'de> de::MapAccess<'de> for Members<'_, 'de> {
    type Error = Error;

    /// Keys are strings, whatever type reads them.
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if !self.has_next()? {
            return Ok(None);
        }
        match self.reader.string()? {
            Text::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::new(s)),
            Text::Copied(s) => seed.deserialize(StrDeserializer::new(s)),
        }
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.reader.expect(b':', "expected `:`")?;
        seed.deserialize(At {
            reader: &mut *self.reader,
            depth: self.depth,
        })
    }
}

/// An enum variant: `"name"`, or `{"name": content}` (`in_object`, the reader past the `{`).
struct Variant<'r, 'de> {
    reader: &'r mut Reader<'de>,
    depth: u8,
    in_object: bool,
}

impl<'de> de::EnumAccess<'de> for Variant<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self)> {
        if self.in_object {
            match self.reader.skip_ws() {
                Some(b'"') => {}
                _ => return Err(Error::syntax("key must be a string")),
            }
        }
        self.reader.pos += 1;
        let name = match self.reader.string()? {
            Text::Borrowed(s) => seed.deserialize(BorrowedStrDeserializer::<Error>::new(s)),
            Text::Copied(s) => seed.deserialize(StrDeserializer::<Error>::new(s)),
        }?;
        if self.in_object {
            self.reader.expect(b':', "expected `:`")?;
        }
        Ok((name, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        if self.in_object {
            de::Deserialize::deserialize(At {
                reader: self.reader,
                depth: self.depth,
            })
        } else {
            Ok(())
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        if !self.in_object {
            return Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"newtype variant",
            ));
        }
        seed.deserialize(At {
            reader: self.reader,
            depth: self.depth,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        if !self.in_object {
            return Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"tuple variant",
            ));
        }
        de::Deserializer::deserialize_seq(
            At {
                reader: self.reader,
                depth: self.depth,
            },
            visitor,
        )
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        if !self.in_object {
            return Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"struct variant",
            ));
        }
        de::Deserializer::deserialize_struct(
            At {
                reader: self.reader,
                depth: self.depth,
            },
            "",
            fields,
            visitor,
        )
    }
}

#[cfg(test)]
mod tests {
    //! This reader against serde_json, the reader it replaced and the one the native services
    //! still use: on generated JSON and on JSON broken byte by byte, for every type read here.

    use proptest::prelude::*;
    use serde::de::{DeserializeOwned, IgnoredAny};
    use serde_json::Value;

    use super::from_slice;
    use crate::assertion::AssertionClaims;
    use crate::jwt::{Header, Jwks};
    use crate::{AccessClaims, ErrorBody};

    /// Where a value holds a struct, as a path of member names (`*`: every element).
    type StructPaths = &'static [&'static [&'static str]];

    /// Whether serde_json's reading may differ from ours: a struct given as an array (which
    /// serde_json reads positionally and this reader refuses) at one of `paths`.
    fn positional(input: &[u8], paths: StructPaths) -> bool {
        fn at<'v>(value: &'v Value, path: &[&str]) -> Vec<&'v Value> {
            match path.split_first() {
                None => vec![value],
                Some((&"*", rest)) => match value {
                    Value::Array(items) => items.iter().flat_map(|v| at(v, rest)).collect(),
                    _ => vec![],
                },
                Some((name, rest)) => value.get(*name).map(|v| at(v, rest)).unwrap_or_default(),
            }
        }
        // Lossy: serde_json skips an ignored field's string without checking its UTF-8, so a
        // struct can read from bytes a `Value` would refuse. A replacement character changes
        // no structure.
        let Ok(value) = serde_json::from_str::<Value>(&String::from_utf8_lossy(input)) else {
            return false;
        };
        paths
            .iter()
            .any(|path| at(&value, path).iter().any(|v| v.is_array()))
    }

    /// A header given as an array (positional to serde_json) whose ignored `crit` holds a
    /// string that is not UTF-8: serde_json skips it unchecked, so only a lossy reading shows
    /// the array (a proptest case once missed it).
    #[test]
    fn a_struct_as_an_array_is_the_one_difference_even_around_bytes_that_are_not_utf8() {
        check_all(b"[\"a\",\"k\",\"EdDSA\",[\"x\",true,\"\xff\",\"y\"]]");
    }

    /// Ours accepts exactly what serde_json accepts, with the same value, but for structs
    /// given as arrays (refused here).
    fn same<T: DeserializeOwned + PartialEq + std::fmt::Debug>(input: &[u8], paths: StructPaths) {
        let ours = from_slice::<T>(input);
        let theirs = serde_json::from_slice::<T>(input);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{:?}", String::from_utf8_lossy(input)),
            (Err(_), Err(_)) => {}
            (Err(_), Ok(_)) if positional(input, paths) => {}
            _ => panic!(
                "{:?}: ours {ours:?}, serde_json {theirs:?}",
                String::from_utf8_lossy(input)
            ),
        }
    }

    /// Accepted or refused alike, for a type that holds no struct.
    fn same_verdict<T: DeserializeOwned>(input: &[u8]) {
        let ours = from_slice::<T>(input).is_ok();
        let theirs = serde_json::from_slice::<T>(input).is_ok();
        assert_eq!(ours, theirs, "{:?}", String::from_utf8_lossy(input));
    }

    fn check_all(input: &[u8]) {
        const ROOT: StructPaths = &[&[]];
        same::<AccessClaims>(input, ROOT);
        same::<AssertionClaims>(input, ROOT);
        same::<Header>(input, ROOT);
        same::<Jwks>(input, &[&[], &["keys", "*"]]);
        same::<ErrorBody>(input, &[&[], &["error"]]);
        same::<Vec<Option<String>>>(input, &[]);
        same::<Option<i64>>(input, &[]);
        same::<u64>(input, &[]);
        same::<i64>(input, &[]);
        same::<u16>(input, &[]);
        same::<bool>(input, &[]);
        same::<String>(input, &[]);
        same::<std::collections::BTreeMap<String, u64>>(input, &[]);
        same_verdict::<IgnoredAny>(input);
    }

    /// Member names the types above read, and a few they do not.
    const NAMES: &[&str] = &[
        "sub",
        "jti",
        "ver",
        "sid",
        "iat",
        "exp",
        "nbf",
        "iss",
        "aud",
        "alg",
        "kid",
        "typ",
        "crit",
        "keys",
        "kty",
        "crv",
        "x",
        "use",
        "error",
        "code",
        "message",
        "ver_checked",
        "ip",
        "htm",
        "htu",
        "jku",
        "zzz",
    ];

    fn string() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9_]{0,8}",
            "\\PC{0,6}",
            any::<String>(),
            Just("token_revoked".to_owned()),
            Just("EdDSA".to_owned()),
        ]
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..70_000).prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
        ]
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number(),
            string().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(NAMES), inner), 0..10).prop_map(
                    |members| {
                        Value::Object(
                            members
                                .into_iter()
                                .map(|(k, v)| (k.to_owned(), v))
                                .collect(),
                        )
                    }
                ),
            ]
        })
    }

    /// Text that is JSON-like: generated JSON, sometimes pretty, then broken in a few places
    /// with the bytes that matter to a JSON reader.
    fn text() -> impl Strategy<Value = Vec<u8>> {
        const PIECES: &[&[u8]] = &[
            b"{",
            b"}",
            b"[",
            b"]",
            b",",
            b":",
            b"\"",
            b"\\",
            b" ",
            b"\t",
            b"\n",
            b"\r",
            b"\x0c",
            b"0",
            b"1",
            b"-",
            b"+",
            b".",
            b"e",
            b"E",
            b"null",
            b"true",
            b"false",
            b"\\u",
            b"\\ud800",
            b"\\udc00",
            b"\\ud83d\\ude00",
            b"\\u0000",
            b"\\x",
            b"\x00",
            b"\x1f",
            b"\xff",
            b"\xc3",
            b"\xc3\xa9",
            b"\xef\xbb\xbf",
            b"01",
            b"-0",
            b"1e400",
            b"1.5",
            b"18446744073709551616",
            b"-9223372036854775809",
            b"\"sub\"",
            b"\"exp\":",
            b"\"crit\":null",
            b"\"kid\":\"k\"",
        ];
        let edit = (
            any::<prop::sample::Index>(),
            0u8..3,
            prop::sample::select(PIECES),
        );
        (json(), any::<bool>(), prop::collection::vec(edit, 0..4)).prop_map(
            |(value, pretty, edits)| {
                let mut bytes = if pretty {
                    serde_json::to_vec_pretty(&value)
                } else {
                    serde_json::to_vec(&value)
                }
                .unwrap_or_default();
                for (at, op, piece) in edits {
                    let i = at.index(bytes.len() + 1);
                    match op {
                        0 => {
                            bytes.splice(i..i, piece.iter().copied());
                        }
                        1 if i < bytes.len() => {
                            bytes.remove(i);
                        }
                        _ => {
                            let end = (i + piece.len()).min(bytes.len());
                            bytes.splice(i..end, piece.iter().copied());
                        }
                    }
                }
                bytes
            },
        )
    }

    /// A claim set's or header's JSON with its members as written, duplicates and all.
    fn members() -> impl Strategy<Value = Vec<u8>> {
        let value = prop_oneof![
            string().prop_map(Value::String),
            number(),
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            Just(serde_json::json!([])),
            Just(serde_json::json!({"a": [1, {"b": null}]})),
        ];
        prop::collection::vec((prop::sample::select(NAMES), value), 0..12).prop_map(|members| {
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
                .collect();
            format!("{{{}}}", body.join(",")).into_bytes()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(10_000))]

        #[test]
        fn reads_generated_and_broken_json_as_serde_json_does(input in text()) {
            check_all(&input);
        }

        #[test]
        fn reads_a_kept_string_as_serde_json_does(s in string(), escape in any::<bool>()) {
            // As written, or with every character escaped (`\uXXXX`, pairs for the others).
            let text = if escape {
                let units: String = s.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
                format!("\"{units}\"")
            } else {
                Value::String(s.clone()).to_string()
            };
            prop_assert_eq!(from_slice::<String>(text.as_bytes()).ok(), Some(s));
            check_all(text.as_bytes());
        }

        #[test]
        fn reads_members_in_any_order_and_number_as_serde_json_does(input in members()) {
            check_all(&input);
        }

        #[test]
        fn reads_any_bytes_as_serde_json_does(input in prop::collection::vec(any::<u8>(), 0..24)) {
            check_all(&input);
        }
    }

    /// Every text of up to four symbols from the bytes that steer a JSON reader.
    #[test]
    fn reads_every_short_text_as_serde_json_does() {
        const SYMBOLS: &[u8] = b"{}[],:\"\\ 0-1.en\xff";
        let mut texts: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = texts
                .iter()
                .filter(|t| t.len() == texts.last().map_or(0, Vec::len))
                .flat_map(|t| {
                    SYMBOLS.iter().map(move |&b| {
                        let mut t = t.clone();
                        t.push(b);
                        t
                    })
                })
                .collect();
            texts.extend(longer);
        }
        for text in &texts {
            check_all(text);
        }
        assert!(texts.len() > 60_000, "{}", texts.len());
    }

    #[test]
    fn the_cases_that_matter_for_tokens() {
        for input in [
            &br#"{"alg":"EdDSA","kid":"k","crit":null}"#[..],
            br#"{"alg":"EdDSA","alg":"none","kid":"k"}"#,
            br#"{"alg":"EdDSA","kid":"k\u0000"}"#,
            br#"{"alg":"Ed\u0044SA","kid":"\ud83d\ude00"}"#,
            br#"{"alg":"EdDSA","kid":"\ud800"}"#,
            br#"{"alg":"EdDSA","kid":"\udc00\ud800"}"#,
            br#"{"alg":"EdDSA","jku":"\ud800","kid":"k"}"#,
            b"{\"alg\":\"EdDSA\",\"jku\":\"\xff\",\"kid\":\"k\"}",
            b"{\"alg\":\"EdDSA\",\"kid\":\"\xff\"}",
            b"{\"alg\":\"EdDSA\",\"kid\":\"a\tb\"}",
            br#"{"alg":"EdDSA","x":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]],"kid":"k"}"#,
            br#" {"alg":"EdDSA"} "#,
            br#"{"alg":"EdDSA"}x"#,
            br#"{"alg":"EdDSA",}"#,
            br#"{"alg":"EdDSA","x":[1,]}"#,
            br#"{"alg":"EdDSA","x":01}"#,
            br#"{"alg":"EdDSA","x":1.}"#,
            br#"{"alg":"EdDSA","x":-}"#,
            br#"{"alg":"EdDSA","x":1e+}"#,
            br#"{"alg":"EdDSA","x":{"a" 1}}"#,
        ] {
            check_all(input);
        }
        let deep = format!(
            "{{\"alg\":\"EdDSA\",\"x\":{}{}}}",
            "[".repeat(5000),
            "]".repeat(5000)
        );
        check_all(deep.as_bytes());
        // Typed nesting stops at serde_json's depth limit, ignored nesting has none.
        #[derive(serde::Deserialize)]
        struct Nest(#[allow(dead_code)] Vec<Nest>);
        for levels in [100, 127, 128, 129, 5000] {
            let deep = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
            same_verdict::<Nest>(deep.as_bytes());
            same_verdict::<Vec<Vec<IgnoredAny>>>(deep.as_bytes());
        }
        assert!(
            from_slice::<Nest>(format!("{}{}", "[".repeat(200), "]".repeat(200)).as_bytes())
                .is_err()
        );
        for (input, ok) in [
            (&b"18446744073709551615"[..], true),
            (b"18446744073709551616", false),
            (b"-1", false),
            (b"-0", false),
            (b"1.0", false),
            (b"1e2", false),
        ] {
            assert_eq!(from_slice::<u64>(input).is_ok(), ok, "{input:?}");
            same::<u64>(input, &[]);
        }
        for input in [
            &b"-9223372036854775808"[..],
            b"-9223372036854775809",
            b"9223372036854775807",
            b"9223372036854775808",
            b"-0",
        ] {
            same::<i64>(input, &[]);
        }
    }

    #[test]
    fn structs_are_objects_only() {
        let positional = br#"["u","j",1,"s",0,1,null,"i","a"]"#;
        assert!(serde_json::from_slice::<AccessClaims>(positional).is_ok());
        assert!(from_slice::<AccessClaims>(positional).is_err());
    }

    #[test]
    fn errors_say_what_and_where_without_the_value() {
        let e = from_slice::<AccessClaims>(br#"{"exp":1.5e300}"#).expect_err("float");
        assert!(!e.is_syntax());
        assert_eq!(
            e.to_string(),
            "invalid type: a number, expected an integer at byte 14"
        );
        let e = from_slice::<AccessClaims>(br#"{"sub":"a""#).expect_err("eof");
        assert!(e.is_syntax());
        let e = from_slice::<Header>(br#"{"alg":"x","alg":"y"}"#).expect_err("dup");
        assert!(e.to_string().starts_with("duplicate field `alg`"), "{e}");
    }
}
