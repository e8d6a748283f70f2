//! Python's `shlex` as Ansible uses it, the one copy in drover: `split`
//! (POSIX mode) for INI host lines, SSH argument strings, `command`'s argv
//! and `validate`; `quote` for the `quote` filter.

/// One word and the byte offset in the input where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word, quotes and escapes removed.
    pub text: String,
    /// Byte offset in the input where the word starts.
    pub offset: usize,
}

/// Text that does not split: an open quote or a trailing backslash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub struct SplitError {
    /// Byte offset of the quote or backslash at fault.
    pub offset: usize,
    /// What is wrong.
    pub msg: &'static str,
}

/// Split `s` into words: whitespace separates, `'...'` is literal, `"..."`
/// lets `\` escape only `"` and `\`, a bare `\` escapes any character. With
/// `comments`, an unquoted `#` ends the line (and the current word).
/// An unterminated quote is an error naming the offset of the quote.
pub fn split(s: &str, comments: bool) -> Result<Vec<Word>, SplitError> {
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
                        None => {
                            return Err(SplitError {
                                offset: i,
                                msg: "unterminated single quote",
                            })
                        }
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
                        None => {
                            return Err(SplitError {
                                offset: i,
                                msg: "unterminated double quote",
                            })
                        }
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
                    None => {
                        return Err(SplitError {
                            offset: i,
                            msg: "trailing backslash",
                        })
                    }
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

/// The words of `s` (`shlex.split(s)`), without their offsets.
pub fn words(s: &str) -> Result<Vec<String>, SplitError> {
    Ok(split(s, false)?.into_iter().map(|w| w.text).collect())
}

/// Python's `shlex.quote`: `s` as one shell word, quoted only when needed
/// (with `'"'"'` for a quote, as Python writes it).
pub fn quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
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

    #[test]
    fn words_like_python() {
        let split = |s: &str| words(s).expect("split");
        assert_eq!(split("ls -l  /tmp"), ["ls", "-l", "/tmp"]);
        assert_eq!(split("echo 'a b' \"c d\""), ["echo", "a b", "c d"]);
        assert_eq!(
            split(r#"a\ b "x\"y" "p\q" 'r\s'"#),
            ["a b", "x\"y", "p\\q", "r\\s"]
        );
        assert_eq!(split("a '' b"), ["a", "", "b"]);
        assert_eq!(split("pre'mid'\"post\""), ["premidpost"]);
        assert!(words("echo 'open").is_err());
        assert!(words("echo \\").is_err());
        assert!(words("echo \"a\\").is_err());
    }

    #[test]
    fn quote_like_python() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a-b_c/d.e:f"), "a-b_c/d.e:f");
        assert_eq!(quote("it's"), r#"'it'"'"'s'"#);
        assert_eq!(quote("é"), "'é'");
    }
}
