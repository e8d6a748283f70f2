//! Shell-like word splitting as Python's `shlex.split` (POSIX mode) does it,
//! which Ansible uses for INI host lines and SSH argument strings.

/// One word and the byte offset in the input where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Word {
    pub text: String,
    pub offset: usize,
}

/// Split `s` into words: whitespace separates, `'...'` is literal, `"..."`
/// lets `\` escape only `"` and `\`, a bare `\` escapes any character. With
/// `comments`, an unquoted `#` ends the line (and the current word).
/// An unterminated quote is an error naming the offset of the quote.
pub(super) fn split(s: &str, comments: bool) -> Result<Vec<Word>, (usize, String)> {
    let mut words = Vec::new();
    let mut cur: Option<Word> = None;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = cur.take() {
                    words.push(w);
                }
            }
            '#' if comments => break,
            '\'' => {
                let w = cur.get_or_insert_with(|| Word {
                    text: String::new(),
                    offset: i,
                });
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, ch)) => w.text.push(ch),
                        None => return Err((i, "unterminated single quote".into())),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(|| Word {
                    text: String::new(),
                    offset: i,
                });
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.peek() {
                            Some((_, n @ ('"' | '\\'))) => {
                                w.text.push(*n);
                                chars.next();
                            }
                            _ => w.text.push('\\'),
                        },
                        Some((_, ch)) => w.text.push(ch),
                        None => return Err((i, "unterminated double quote".into())),
                    }
                }
            }
            '\\' => {
                let w = cur.get_or_insert_with(|| Word {
                    text: String::new(),
                    offset: i,
                });
                match chars.next() {
                    Some((_, n)) => w.text.push(n),
                    None => return Err((i, "trailing backslash".into())),
                }
            }
            c => cur
                .get_or_insert_with(|| Word {
                    text: String::new(),
                    offset: i,
                })
                .text
                .push(c),
        }
    }
    if let Some(w) = cur.take() {
        words.push(w);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str, comments: bool) -> Vec<String> {
        split(s, comments)
            .expect("valid")
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    #[test]
    fn quotes_escapes_and_comments() {
        assert_eq!(
            texts(r#"a 'b c' "d \"e\" \x" f\ g"#, false),
            ["a", "b c", r#"d "e" \x"#, "f g"]
        );
        assert_eq!(texts("h x=1 # note", true), ["h", "x=1"]);
        assert_eq!(texts("h pw=ab#cd", true), ["h", "pw=ab"]);
        assert_eq!(texts("h pw='ab#cd'", true), ["h", "pw=ab#cd"]);
        assert_eq!(split("  ab cd", false).expect("ok")[1].offset, 5);
        assert!(split("a 'b", false).is_err());
    }
}
