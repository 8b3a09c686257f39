//! The repository-specific part of the reproduction: the tables in `docs/reproduction.md` sit
//! between `<!-- name:begin -->` / `<!-- name:end -->` markers and are rewritten from a run's
//! output, so that the document's figures come from a command and are never typed by hand.

use intriguing::Error;

/// Replaces the text between `<!-- {key}:begin -->` and `<!-- {key}:end -->` in `doc` by
/// `content` (markers kept). Errors if a marker is missing or out of order.
/// (Tested by the unit tests below.)
pub fn replace_between_markers(doc: &str, key: &str, content: &str) -> intriguing::Result<String> {
    let begin = format!("<!-- {key}:begin -->");
    let end = format!("<!-- {key}:end -->");
    let b = doc
        .find(&begin)
        .ok_or_else(|| Error::InvalidConfig(format!("marker {begin} not found")))?;
    let e = doc[b..]
        .find(&end)
        .map(|e| e + b)
        .ok_or_else(|| Error::InvalidConfig(format!("marker {end} not found after {begin}")))?;
    let mut out = String::with_capacity(doc.len() + content.len());
    out.push_str(&doc[..b + begin.len()]);
    out.push('\n');
    out.push_str(content.trim_end());
    out.push('\n');
    out.push_str(&doc[e..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::replace_between_markers;

    #[test]
    fn replaces_only_between_the_markers() {
        let doc = "a\n<!-- t:begin -->\nold\n<!-- t:end -->\nb\n";
        let new = replace_between_markers(doc, "t", "new\n\n").unwrap();
        assert_eq!(new, "a\n<!-- t:begin -->\nnew\n<!-- t:end -->\nb\n");
    }

    #[test]
    fn markers_missing_is_an_error() {
        assert!(replace_between_markers("no markers", "t", "x").is_err());
        assert!(replace_between_markers("<!-- t:end --> <!-- t:begin -->", "t", "x").is_err());
    }
}
