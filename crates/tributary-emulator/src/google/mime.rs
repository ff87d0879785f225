//! The `payload` tree of `messages.get?format=full`: MIME parts with their headers and
//! transfer-decoded bodies (base64url), part ids `""`, `0`, `0.1`, … as Gmail numbers them.

use super::multipart;
use crate::model::parse_header_fields;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct Body {
    pub size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub part_id: String,
    pub mime_type: String,
    pub filename: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    pub body: Body,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The media type of a message or part from its headers (`text/plain` by default).
pub fn top_level_type(headers: &[(String, String)]) -> String {
    header(headers, "Content-Type")
        .map(multipart::media_type)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "text/plain".to_string())
}

fn filename(headers: &[(String, String)]) -> String {
    let from = |name: &str, param: &str| {
        header(headers, name).and_then(|value| {
            multipart::content_type_params(value)
                .find(|(n, _)| n == param)
                .map(|(_, v)| v)
        })
    };
    from("Content-Disposition", "filename")
        .or_else(|| from("Content-Type", "name"))
        .unwrap_or_default()
}

/// Parses an entity (a whole message or one part) into Gmail's part tree.
pub fn parse_part(entity: &[u8], part_id: &str) -> Part {
    let (head, content) = multipart::split_head(entity);
    let fields = parse_header_fields(head);
    let mime_type = top_level_type(&fields);
    let boundary = header(&fields, "Content-Type").and_then(multipart::boundary);
    let child_id = |index: usize| {
        if part_id.is_empty() {
            index.to_string()
        } else {
            format!("{part_id}.{index}")
        }
    };
    let (body, parts) = match boundary {
        Some(boundary) if mime_type.starts_with("multipart/") => {
            let parts = multipart::split(content, &boundary)
                .into_iter()
                .enumerate()
                .map(|(i, child)| parse_part(child, &child_id(i)))
                .collect();
            (
                Body {
                    size: 0,
                    data: None,
                },
                parts,
            )
        }
        _ => {
            let encoding = header(&fields, "Content-Transfer-Encoding").unwrap_or_default();
            let decoded = decode_transfer_encoding(content, encoding);
            let data = (!decoded.is_empty()).then(|| URL_SAFE.encode(&decoded));
            (
                Body {
                    size: decoded.len(),
                    data,
                },
                Vec::new(),
            )
        }
    };
    Part {
        part_id: part_id.to_string(),
        mime_type,
        filename: filename(&fields),
        headers: fields
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect(),
        body,
        parts,
    }
}

fn decode_transfer_encoding(content: &[u8], encoding: &str) -> Vec<u8> {
    match encoding.trim().to_ascii_lowercase().as_str() {
        "base64" => {
            let compact: Vec<u8> = content
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            STANDARD
                .decode(&compact)
                .unwrap_or_else(|_| content.to_vec())
        }
        "quoted-printable" => decode_quoted_printable(content),
        _ => content.to_vec(),
    }
}

fn decode_quoted_printable(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        if content[i] != b'=' {
            out.push(content[i]);
            i += 1;
            continue;
        }
        let rest = &content[i + 1..];
        if rest.starts_with(b"\r\n") {
            i += 3;
        } else if rest.starts_with(b"\n") {
            i += 2;
        } else if let Some(byte) = rest
            .get(..2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(b'=');
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_message_becomes_a_part_tree() {
        let raw = b"Content-Type: multipart/alternative; boundary=\"x\"\r\nSubject: s\r\n\r\n--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n--x\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n--x--\r\n";
        let part = parse_part(raw, "");
        assert_eq!(part.mime_type, "multipart/alternative");
        assert_eq!(part.parts.len(), 2);
        assert_eq!(part.parts[0].part_id, "0");
        assert_eq!(
            part.parts[0].body.data.as_deref(),
            Some(URL_SAFE.encode("café").as_str())
        );
        assert_eq!(part.parts[1].body.size, "<b>hi</b>".len());
    }

    #[test]
    fn plain_message_has_its_body_inline() {
        let part = parse_part(b"Subject: s\r\n\r\nhello", "");
        assert_eq!(part.mime_type, "text/plain");
        assert_eq!(part.body.size, 5);
        assert!(part.parts.is_empty());
    }
}
