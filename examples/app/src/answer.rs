//! What a route answers, whatever the framework: [`Answer`], and the HTML around it.

/// A route's answer, turned into a response by the framework's side of the app.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `200 OK` with an HTML page.
    Page(String),
    /// `200 OK` with plain text.
    Text(String),
    /// `303 See Other` to this path.
    Redirect(&'static str),
    /// An error status with an HTML page that explains it.
    Refused(u16, String),
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}\
input,button{font-size:1rem;padding:.4rem .6rem}table{border-collapse:collapse;margin:1rem 0}td,th{padding:.3rem .6rem;text-align:left}";

/// `body` in the app's HTML page.
pub(crate) fn page(body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sessions</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>"
    )
}

/// HTML-escapes user input before it goes into the page.
pub(crate) fn escape(text: &str) -> String {
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
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
