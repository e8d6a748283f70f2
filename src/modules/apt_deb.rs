//! `apt` with `deb`: install .deb files, a path on the target or a URL the
//! target downloads (curl, else wget), as Ansible does even in check mode.
//! One exec downloads and reads each file's package, version and
//! architecture (`dpkg-deb -f`) and the version installed; a file whose
//! version is installed already is skipped. The install is `apt-get
//! install /path/x.deb`, which brings the file's dependencies too.

use crate::transport::shell_quote;

/// What the read found about one .deb file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DebFile {
    /// The file on the target.
    pub path: String,
    /// `Package` of the file.
    pub package: String,
    /// `Version` of the file.
    pub version: String,
    /// The installed version of the package, when installed.
    pub installed: Option<String>,
    /// Is exactly that version installed?
    pub same: bool,
}

/// The read's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DebRead {
    /// Every file read.
    Files(Vec<DebFile>),
    /// A download failed: the URL and why.
    DownloadFailed(String, String),
    /// No curl or wget on the target.
    NoDownloader(String),
    /// A path that is no file on the target.
    Missing(String),
    /// A file dpkg-deb cannot read.
    NotADeb(String, String),
}

/// Is this `deb` a URL (Ansible: it holds `://`)?
pub(super) fn is_url(deb: &str) -> bool {
    deb.contains("://")
}

/// The name a URL's file gets in the download directory: its last part,
/// never a path of its own.
fn spool_name(url: &str, i: usize) -> String {
    let last = url
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let clean: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '~') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{i}-{}", clean.trim_start_matches('.'))
}

/// The script: download the URLs, then print one `@@deb` line per file
/// (tab-separated: path, package, version, installed version, same|new).
pub(super) fn read_script(debs: &[String]) -> String {
    let mut s = String::from("export LC_ALL=C\nt=\n");
    if debs.iter().any(|d| is_url(d)) {
        // Downloads go to a directory of their own, removed after the install.
        s.push_str(
            "t=$(mktemp -d \"${TMPDIR:-/tmp}/drover-deb.XXXXXX\") || exit 1; echo \"@@tmp $t\"\n",
        );
    }
    for (i, deb) in debs.iter().enumerate() {
        let path = if is_url(deb) {
            s.push_str(&format!(
                "u={u}; d=\"$t\"/{d}\n\
                 if command -v curl >/dev/null 2>&1; then e=$(curl -fsSL --connect-timeout 10 -o \"$d\" -- \"$u\" 2>&1)\n\
                 elif command -v wget >/dev/null 2>&1; then e=$(wget -q -T 10 -t 1 -O \"$d\" -- \"$u\" 2>&1)\n\
                 else echo \"@@nodl $u\"; rm -rf \"$t\"; exit 0; fi\n\
                 if [ $? -ne 0 ]; then rm -rf \"$t\"; printf '@@dlfail %s\\t%s\\n' \"$u\" \"$(printf %s \"$e\" | tr '\\n\\t' '  ')\"; exit 0; fi\n",
                u = shell_quote(deb),
                d = shell_quote(&spool_name(deb, i)),
            ));
            "\"$d\"".to_string()
        } else {
            shell_quote(deb)
        };
        s.push_str(&format!(
            "f={path}\n\
             if [ ! -f \"$f\" ]; then echo \"@@missing $f\"; [ -z \"$t\" ] || rm -rf \"$t\"; exit 0; fi\n\
             if ! e=$(dpkg-deb -f \"$f\" Package Version Architecture 2>&1); then printf '@@notdeb %s\\t%s\\n' \"$f\" \"$(printf %s \"$e\" | tr '\\n\\t' '  ')\"; [ -z \"$t\" ] || rm -rf \"$t\"; exit 0; fi\n\
             p=$(dpkg-deb -f \"$f\" Package); v=$(dpkg-deb -f \"$f\" Version); a=$(dpkg-deb -f \"$f\" Architecture)\n\
             q=$(dpkg-query -W -f='${{db:Status-Abbrev}}|${{Version}}|${{Architecture}}\\n' \"$p\" 2>/dev/null | awk -F'|' -v a=\"$a\" '$1 ~ /^ii/ && ($3 == a || $3 == \"all\" || a == \"all\") {{print $2; exit}}')\n\
             if [ -n \"$q\" ] && dpkg --compare-versions \"$v\" eq \"$q\"; then s=same; else s=new; fi\n\
             printf '@@deb %s\\t%s\\t%s\\t%s\\t%s\\n' \"$f\" \"$p\" \"$v\" \"$q\" \"$s\"\n",
        ));
    }
    s.push_str("echo @@end\n");
    s
}

/// The read's output, parsed, and the download directory to remove.
pub(super) fn parse(out: &str) -> Result<(DebRead, Option<String>), super::OutputError> {
    let tmp = out
        .lines()
        .find_map(|l| l.strip_prefix("@@tmp "))
        .map(str::to_string);
    parse_files(out).map(|r| (r, tmp))
}

fn parse_files(out: &str) -> Result<DebRead, super::OutputError> {
    let mut files = Vec::new();
    for line in out.lines() {
        if let Some(u) = line.strip_prefix("@@nodl ") {
            return Ok(DebRead::NoDownloader(u.to_string()));
        }
        if let Some(r) = line.strip_prefix("@@dlfail ") {
            let (u, e) = r.split_once('\t').unwrap_or((r, ""));
            return Ok(DebRead::DownloadFailed(u.to_string(), e.trim().to_string()));
        }
        if let Some(f) = line.strip_prefix("@@missing ") {
            return Ok(DebRead::Missing(f.to_string()));
        }
        if let Some(r) = line.strip_prefix("@@notdeb ") {
            let (f, e) = r.split_once('\t').unwrap_or((r, ""));
            return Ok(DebRead::NotADeb(f.to_string(), e.trim().to_string()));
        }
        if let Some(r) = line.strip_prefix("@@deb ") {
            let f: Vec<&str> = r.split('\t').collect();
            let [path, package, version, installed, same] = f[..] else {
                return Err(super::OutputError::Malformed(format!("bad line {line:?}")));
            };
            files.push(DebFile {
                path: path.to_string(),
                package: package.to_string(),
                version: version.to_string(),
                installed: (!installed.is_empty()).then(|| installed.to_string()),
                same: same == "same",
            });
        }
        if line == "@@end" {
            return Ok(DebRead::Files(files));
        }
    }
    Err(super::OutputError::Incomplete)
}

/// Remove the download directory.
pub(super) fn cleanup_script(tmp: &str) -> String {
    format!("rm -rf -- {}\n", shell_quote(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_spool_under_a_name_of_their_own() {
        assert!(is_url(
            "https://github.com/grafana/loki/releases/download/v3.3.2/loki_3.3.2_arm64.deb"
        ));
        assert!(!is_url("/tmp/x.deb"));
        assert_eq!(
            spool_name("https://h/x/../loki_3.3.2_arm64.deb?raw=1", 0),
            "0-loki_3.3.2_arm64.deb"
        );
        assert_eq!(spool_name("https://h/..", 1), "1-");
    }

    #[test]
    fn parses_files_and_failures() {
        assert_eq!(
            parse_files("@@deb /tmp/a.deb\thello\t1.0-1\t1.0-1\tsame\n@@deb /tmp/b.deb\tb\t2\t\tnew\n@@end\n"),
            Ok(DebRead::Files(vec![
                DebFile {
                    path: "/tmp/a.deb".into(),
                    package: "hello".into(),
                    version: "1.0-1".into(),
                    installed: Some("1.0-1".into()),
                    same: true
                },
                DebFile {
                    path: "/tmp/b.deb".into(),
                    package: "b".into(),
                    version: "2".into(),
                    installed: None,
                    same: false
                },
            ]))
        );
        assert_eq!(
            parse("@@tmp /tmp/d\n@@dlfail https://x/a.deb\tcurl: (7) Failed to connect\n"),
            Ok((
                DebRead::DownloadFailed(
                    "https://x/a.deb".into(),
                    "curl: (7) Failed to connect".into()
                ),
                Some("/tmp/d".into())
            ))
        );
        assert_eq!(
            parse_files("@@deb x\n"),
            Err(super::super::OutputError::Malformed(
                "bad line \"@@deb x\"".into()
            ))
        );
        assert_eq!(parse_files(""), Err(super::super::OutputError::Incomplete));
    }
}
