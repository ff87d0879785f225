//! MIME multipart framing, shared by the batch endpoint (requests arrive as
//! `multipart/mixed`) and `messages.get?format=full` (messages may be multipart).
//! Lenient about line endings: Python's email generator writes bare LF.

/// The parameters of a `Content-Type` value, names lowercased, quotes removed.
pub fn content_type_params(value: &str) -> impl Iterator<Item = (String, String)> + '_ {
    value.split(';').skip(1).filter_map(|param| {
        let (name, value) = param.split_once('=')?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some((name.trim().to_ascii_lowercase(), value.to_string()))
    })
}

/// The media type of a `Content-Type` value, lowercased, without parameters.
pub fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

pub fn boundary(content_type: &str) -> Option<String> {
    content_type_params(content_type)
        .find(|(name, _)| name == "boundary")
        .map(|(_, value)| value)
        .filter(|b| !b.is_empty())
}

/// Drops one trailing line break: the one before a delimiter belongs to the delimiter.
fn strip_final_line_break(part: &[u8]) -> &[u8] {
    part.strip_suffix(b"\r\n")
        .or_else(|| part.strip_suffix(b"\n"))
        .unwrap_or(part)
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b" \t\r\n".contains(b))
        .map_or(0, |i| i + 1);
    &line[..end]
}

/// Splits a multipart body into its parts (headers and content of each). The preamble
/// and epilogue are dropped; a missing close delimiter is tolerated.
pub fn split<'b>(body: &'b [u8], boundary: &str) -> Vec<&'b [u8]> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut current: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() {
        let line_end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |i| pos + i + 1);
        let line = trim_line_end(&body[pos..line_end]);
        if let Some(rest) = line.strip_prefix(delimiter)
            && (rest.is_empty() || rest == b"--")
        {
            if let Some(start) = current.take() {
                parts.push(strip_final_line_break(&body[start..pos]));
            }
            if rest == b"--" {
                return parts;
            }
            current = Some(line_end);
        }
        pos = line_end;
    }
    if let Some(start) = current {
        parts.push(&body[start..]);
    }
    parts
}

/// Splits an entity into its header block and its content at the first empty line.
pub fn split_head(entity: &[u8]) -> (&[u8], &[u8]) {
    if let Some(rest) = entity
        .strip_prefix(b"\r\n")
        .or_else(|| entity.strip_prefix(b"\n"))
    {
        return (&[], rest);
    }
    for (i, window) in entity.windows(2).enumerate() {
        if window[0] != b'\n' {
            continue;
        }
        if window[1] == b'\n' {
            return (&entity[..=i], &entity[i + 2..]);
        }
        if entity[i + 1..].starts_with(b"\r\n") {
            return (&entity[..=i], &entity[i + 3..]);
        }
    }
    (entity, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_crlf_and_lf_bodies() {
        let crlf =
            b"preamble\r\n--b\r\nA: 1\r\n\r\nfirst\r\n--b\r\n\r\nsecond\r\n--b--\r\nepilogue";
        assert_eq!(
            split(crlf, "b"),
            vec![&b"A: 1\r\n\r\nfirst"[..], &b"\r\nsecond"[..]]
        );
        let lf = b"--b\nA: 1\n\nfirst\n--b--\n";
        assert_eq!(split(lf, "b"), vec![&b"A: 1\n\nfirst"[..]]);
    }

    #[test]
    fn head_and_content_split_at_the_first_empty_line() {
        assert_eq!(
            split_head(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\nmore"),
            (&b"A: 1\r\nB: 2\r\n"[..], &b"body\r\n\r\nmore"[..])
        );
        assert_eq!(split_head(b"A: 1\n\nbody"), (&b"A: 1\n"[..], &b"body"[..]));
        assert_eq!(split_head(b"\r\nbody"), (&b""[..], &b"body"[..]));
    }

    #[test]
    fn boundary_parameter_may_be_quoted() {
        assert_eq!(
            boundary("multipart/mixed; boundary=\"==abc==\"").as_deref(),
            Some("==abc==")
        );
        assert_eq!(
            boundary("multipart/mixed; charset=x; BOUNDARY=xyz").as_deref(),
            Some("xyz")
        );
        assert_eq!(boundary("multipart/mixed"), None);
    }
}
