//! `uri` (ansible.builtin.uri): make an HTTP request FROM THE HOST with
//! curl and return its status, headers (lower-cased, `-` as `_`, as
//! Ansible returns them) and body.
//!
//! A request's effect on the server cannot be known, so the module runs
//! like `command`: skipped in check mode (Ansible's uri does not support
//! check mode either), `changed: false` unless `dest` was written.
//!
//! The URL, headers, credentials and request options go to curl in a
//! config file made with umask 077 from the first bytes of stdin and
//! removed on exit; the body follows on stdin. Nothing secret is on a
//! command line.

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;

use super::args::{bool_ish, opt_string_ish, opt_strings_ish, opt_u64_ish};
use super::get_url::curl_quote;
use super::safe;
use super::{Module, ModuleCtx, ModuleError, Plan};
use crate::transport::shell_quote;
use crate::{Map, Value};

/// Arguments of `uri`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uri {
    /// The URL (http or https).
    url: String,
    /// HTTP method, one upper-case word.
    #[serde(default = "default_method")]
    method: String,
    /// Request body: text, or data encoded per `body_format`.
    #[serde(default)]
    body: Option<Value>,
    /// How a non-text body is encoded.
    #[serde(default)]
    body_format: BodyFormat,
    /// Extra request headers.
    #[serde(default)]
    headers: Option<Value>,
    /// Statuses that count as success.
    #[serde(default, deserialize_with = "opt_strings_ish")]
    status_code: Option<Vec<String>>,
    /// Return the body as `content` (also when the status is not expected).
    #[serde(default, deserialize_with = "bool_ish")]
    return_content: bool,
    /// Write the body to this file (or into this directory).
    #[serde(default, deserialize_with = "opt_string_ish")]
    dest: Option<String>,
    /// User for HTTP basic authentication.
    #[serde(default, alias = "user", deserialize_with = "opt_string_ish")]
    url_username: Option<String>,
    /// Password for HTTP basic authentication.
    #[serde(default, alias = "password", deserialize_with = "opt_string_ish")]
    url_password: Option<String>,
    /// Send credentials with the first request, not only after a 401.
    #[serde(default, deserialize_with = "bool_ish")]
    force_basic_auth: bool,
    /// Verify TLS certificates.
    #[serde(default = "super::args::yes", deserialize_with = "bool_ish")]
    validate_certs: bool,
    /// Seconds for the whole request.
    #[serde(default, deserialize_with = "opt_u64_ish")]
    timeout: Option<u64>,
    /// Which redirects to follow.
    #[serde(default)]
    follow_redirects: Follow,
    /// Skip the request when this path exists.
    #[serde(default, deserialize_with = "opt_string_ish")]
    creates: Option<String>,
    /// Skip the request unless this path exists.
    #[serde(default, deserialize_with = "opt_string_ish")]
    removes: Option<String>,
    /// Use the host's proxy settings (`http_proxy`, ...).
    #[serde(default = "super::args::yes", deserialize_with = "bool_ish")]
    use_proxy: bool,
    /// CA bundle on the host to verify the server with.
    #[serde(default, deserialize_with = "opt_string_ish")]
    ca_path: Option<String>,
    /// Client certificate (PEM) on the host.
    #[serde(default, deserialize_with = "opt_string_ish")]
    client_cert: Option<String>,
    /// Client key (PEM) on the host.
    #[serde(default, deserialize_with = "opt_string_ish")]
    client_key: Option<String>,
    /// User-Agent header.
    #[serde(default, deserialize_with = "opt_string_ish")]
    http_agent: Option<String>,
    /// Connect through this Unix socket.
    #[serde(default, deserialize_with = "opt_string_ish")]
    unix_socket: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

/// `body_format`.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum BodyFormat {
    #[default]
    Raw,
    Json,
    FormUrlencoded,
}

/// `follow_redirects`.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Follow {
    /// Only for GET and HEAD.
    #[default]
    Safe,
    All,
    Yes,
    Urllib2,
    None,
    No,
}

/// The prepared request: curl's config and the body bytes.
#[derive(Debug, PartialEq)]
pub struct Request {
    config: String,
    body: Option<Vec<u8>>,
    status_ok: Vec<i64>,
}

/// Percent-encoding as Python's `quote_plus` (what Ansible's
/// `form-urlencoded` uses).
fn quote_plus(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                o.push(b as char)
            }
            b' ' => o.push('+'),
            _ => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        other => other.to_string(),
    }
}

/// A mapping or list of pairs as `a=1&b=2`; list values repeat the key.
fn form_urlencoded(body: &Value) -> Result<String, ModuleError> {
    let pairs: Vec<(String, &Value)> = match body {
        Value::String(s) => return Ok(s.clone()),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i.as_array().map(Vec::as_slice) {
                Some([k, v]) => Ok((scalar(k), v)),
                _ => Err(ModuleError::Args(
                    "failed to parse body as form_urlencoded: a list must hold [key, value] pairs"
                        .into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        other => return Ok(scalar(other)),
    };
    let mut out = Vec::new();
    for (k, v) in pairs {
        let values: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            v => vec![v],
        };
        for v in values.into_iter().filter(|v| !v.is_null()) {
            out.push(format!("{}={}", quote_plus(&k), quote_plus(&scalar(v))));
        }
    }
    Ok(out.join("&"))
}

/// The URL with a password in it replaced (for results and messages).
fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((info, host)) => {
            let user = info.split_once(':').map(|(u, _)| u).unwrap_or(info);
            format!("{scheme}://{user}:********@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// The file name a URL names (its last path segment), for a `dest`
/// directory; `index.html` as Ansible when there is none.
fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after = path.split_once("://").map(|(_, r)| r).unwrap_or(path);
    after
        .split_once('/')
        .and_then(|(_, p)| p.rsplit('/').next())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .unwrap_or("index.html")
        .to_string()
}

/// What the request script printed.
#[derive(Debug, Default, PartialEq)]
struct Response {
    /// curl's exit status.
    rc: i32,
    /// HTTP status (0 when no response came).
    status: i64,
    /// Seconds taken.
    elapsed: f64,
    /// The URL of the last response.
    url: String,
    /// The last response's status line and headers.
    head: String,
    /// The body (not read back when written to `dest`, unless asked).
    body: Option<Vec<u8>>,
    /// `dest` written (`Some(true)`), already equal (`Some(false)`).
    wrote: Option<bool>,
    /// The file written.
    path: Option<String>,
    /// The request was skipped: why.
    skipped: Option<String>,
    /// curl's error text.
    stderr: String,
}

fn parse_response(out: &str) -> Result<Response, super::OutputError> {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| super::OutputError::Malformed(format!("bad output: {e}")))
    };
    let mut r = Response::default();
    let mut done = false;
    for line in out.lines() {
        if line == "@@end" {
            done = true;
        } else if let Some(s) = line.strip_prefix("@@skip ") {
            r.skipped = Some(s.to_string());
            done = true;
        } else if let Some(s) = line.strip_prefix("@@rc ") {
            r.rc = s.trim().parse().unwrap_or(-1);
        } else if let Some(s) = line.strip_prefix("@@w ") {
            let mut parts = s.splitn(3, ' ');
            r.status = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            r.elapsed = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0.0);
            r.url = parts.next().unwrap_or("").to_string();
        } else if let Some(s) = line.strip_prefix("@@h") {
            r.head = String::from_utf8_lossy(&b64(s)?).into_owned();
        } else if let Some(s) = line.strip_prefix("@@b") {
            r.body = Some(b64(s)?);
        } else if let Some(p) = line.strip_prefix("@@wrote ") {
            r.wrote = Some(true);
            r.path = Some(p.to_string());
        } else if let Some(p) = line.strip_prefix("@@same ") {
            r.wrote = Some(false);
            r.path = Some(p.to_string());
        } else if let Some(s) = line.strip_prefix("@@e") {
            r.stderr = String::from_utf8_lossy(&b64(s)?).into_owned();
        }
    }
    if !done {
        return Err(super::OutputError::Incomplete);
    }
    Ok(r)
}

/// The last response's status line reason and headers, as Ansible names
/// them (lower case, `-` as `_`); repeated headers are joined with `, `.
fn parse_head(head: &str) -> (String, Vec<(String, String)>) {
    let lines: Vec<&str> = head.lines().map(|l| l.trim_end_matches('\r')).collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("HTTP/"))
        .unwrap_or(0);
    let reason = lines
        .get(start)
        .and_then(|l| l.splitn(3, ' ').nth(2))
        .unwrap_or("")
        .to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    for l in lines.iter().skip(start + 1) {
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase().replace('-', "_");
        let v = v.trim().to_string();
        match headers.iter_mut().find(|(n, _)| *n == k) {
            Some((_, old)) => {
                old.push_str(", ");
                old.push_str(&v);
            }
            None => headers.push((k, v)),
        }
    }
    (reason, headers)
}

impl Uri {
    fn status_ok(&self) -> Result<Vec<i64>, ModuleError> {
        match &self.status_code {
            None => Ok(vec![200]),
            Some(list) => list
                .iter()
                .map(|s| {
                    s.trim().parse::<i64>().map_err(|_| {
                        ModuleError::Args(format!("status_code: {s:?} is not an integer"))
                    })
                })
                .collect(),
        }
    }

    fn header_pairs(&self) -> Result<Vec<(String, String)>, ModuleError> {
        let pairs: Vec<(String, String)> = match &self.headers {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
            Some(other) => {
                return Err(ModuleError::Args(format!(
                    "headers must be a mapping, not {other}"
                )))
            }
        };
        for (k, v) in &pairs {
            safe::one_line("headers", k)?;
            safe::one_line("headers", v)?;
            if k.is_empty() || k.contains([':', ' ']) {
                return Err(ModuleError::Args(format!("bad header name {k:?}")));
            }
        }
        Ok(pairs)
    }

    /// Check the arguments and build curl's config and the body.
    fn request(&self) -> Result<Request, ModuleError> {
        if self.method.is_empty() || !self.method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ModuleError::Args(
                "Parameter 'method' needs to be a single word in uppercase, like GET or POST."
                    .into(),
            ));
        }
        safe::one_line("url", &self.url)?;
        let scheme_ok = ["http://", "https://"]
            .iter()
            .any(|p| self.url.to_ascii_lowercase().starts_with(p));
        if !scheme_ok {
            return Err(ModuleError::Args(format!(
                "url must be http:// or https://: {}",
                mask_url(&self.url)
            )));
        }
        let mut headers = self.header_pairs()?;
        let has_type = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        let body = match (&self.body, self.body_format) {
            (None | Some(Value::Null), _) => None,
            (Some(b), BodyFormat::Json) => {
                if !has_type {
                    headers.push(("Content-Type".into(), "application/json".into()));
                }
                Some(match b {
                    Value::String(s) => s.clone(),
                    other => serde_json::to_string(other)
                        .map_err(|e| ModuleError::Args(format!("body: {e}")))?,
                })
            }
            (Some(b), BodyFormat::FormUrlencoded) => {
                if !has_type {
                    headers.push((
                        "Content-Type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ));
                }
                Some(form_urlencoded(b)?)
            }
            (Some(b), BodyFormat::Raw) => Some(scalar(b)),
        };
        let mut c = format!("url = {}\n", curl_quote(&self.url));
        match (self.method.as_str(), &body) {
            ("GET", None) | ("POST", Some(_)) => {}
            ("HEAD", None) => c.push_str("head\n"),
            (m, _) => c.push_str(&format!("request = {}\n", curl_quote(m))),
        }
        let follow = match self.follow_redirects {
            Follow::All | Follow::Yes => true,
            Follow::None | Follow::No => false,
            Follow::Safe | Follow::Urllib2 => matches!(self.method.as_str(), "GET" | "HEAD"),
        };
        if follow {
            c.push_str("location\nmax-redirs = 10\n");
        }
        if !self.validate_certs {
            c.push_str("insecure\n");
        }
        let t = self.timeout.unwrap_or(30).max(1);
        c.push_str(&format!("max-time = {t}\n"));
        if !self.use_proxy {
            c.push_str("noproxy = \"*\"\n");
        }
        let agent = self.http_agent.as_deref().unwrap_or("ansible-httpget");
        safe::one_line("http_agent", agent)?;
        c.push_str(&format!("user-agent = {}\n", curl_quote(agent)));
        for (arg, opt, v) in [
            ("ca_path", "cacert", &self.ca_path),
            ("client_cert", "cert", &self.client_cert),
            ("client_key", "key", &self.client_key),
            ("unix_socket", "unix-socket", &self.unix_socket),
        ] {
            if let Some(v) = v {
                safe::one_line(arg, v)?;
                c.push_str(&format!("{opt} = {}\n", curl_quote(v)));
            }
        }
        for (k, v) in &headers {
            c.push_str(&format!("header = {}\n", curl_quote(&format!("{k}: {v}"))));
        }
        if let Some(u) = &self.url_username {
            let p = self.url_password.clone().unwrap_or_default();
            c.push_str(&format!("user = {}\n", curl_quote(&format!("{u}:{p}"))));
            // Without force_basic_auth Ansible answers a 401 challenge
            // only; curl does the same with anyauth, which needs a body it
            // can send twice (stdin cannot be): with a body, send at once.
            if self.force_basic_auth || body.is_some() {
                c.push_str("basic\n");
            } else {
                c.push_str("anyauth\n");
            }
        }
        if body.is_some() {
            c.push_str("data-binary = \"@-\"\n");
        }
        Ok(Request {
            config: c,
            body: body.map(String::into_bytes),
            status_ok: self.status_ok()?,
        })
    }

    /// The script that makes the request; its stdin is the config, then the body.
    fn script(&self, req: &Request) -> String {
        let mut s = String::from(
            "command -v curl >/dev/null 2>&1 || { echo 'uri needs curl on the host' >&2; exit 95; }\n",
        );
        if let Some(p) = &self.creates {
            s.push_str(&format!(
                "if [ -e {q} ]; then printf '@@skip %s\\n' \"skipped, since '\"{q}\"' exists\"; exit 0; fi\n",
                q = shell_quote(p)
            ));
        }
        if let Some(p) = &self.removes {
            s.push_str(&format!(
                "if [ ! -e {q} ]; then printf '@@skip %s\\n' \"skipped, since '\"{q}\"' does not exist\"; exit 0; fi\n",
                q = shell_quote(p)
            ));
        }
        s.push_str("umask 077\nw=$(mktemp -d) || exit 1\ntrap 'rm -rf -- \"$w\"' EXIT\n");
        s.push_str(&format!("head -c {} > \"$w/cfg\"\n", req.config.len()));
        s.push_str("set --\n");
        if let Some(d) = &self.dest {
            s.push_str(&format!(
                "d={}\nif [ -d \"$d\" ]; then d=\"${{d%/}}\"/{}; fi\nif [ -f \"$d\" ]; then set -- -z \"$d\"; fi\n",
                shell_quote(d),
                shell_quote(&url_file_name(&self.url))
            ));
        }
        s.push_str(
            "o=$(curl -sS -K \"$w/cfg\" -D \"$w/h\" -o \"$w/b\" -w '%{http_code} %{time_total} %{url_effective}' \"$@\" 2>\"$w/e\")\n\
             rc=$?\nprintf '@@rc %s\\n@@w %s\\n' \"$rc\" \"$o\"\n\
             [ -f \"$w/h\" ] && { printf '@@h'; base64 -w0 < \"$w/h\"; echo; }\n\
             printf '@@e'; base64 -w0 < \"$w/e\"; echo\n\
             code=${o%% *}\n",
        );
        let show_body = "[ -f \"$w/b\" ] && { printf '@@b'; base64 -w0 < \"$w/b\"; echo; }\n";
        match &self.dest {
            None => s.push_str(show_body),
            Some(_) => {
                let ok: Vec<String> = req
                    .status_ok
                    .iter()
                    .filter(|c| **c != 304)
                    .map(i64::to_string)
                    .collect();
                if self.return_content {
                    s.push_str(show_body);
                } else {
                    // Shown only for a failure, as Ansible's message carries it.
                    s.push_str(&format!(
                        "case \"$code\" in {}) ;; *) {show_body};; esac\n",
                        if ok.is_empty() {
                            "''".to_string()
                        } else {
                            ok.join("|")
                        }
                    ));
                }
                if !ok.is_empty() {
                    s.push_str(&format!(
                        "if [ \"$rc\" = 0 ]; then case \"$code\" in {}) \
                         touch -- \"$w/b\"; \
                         if [ -f \"$d\" ] && cmp -s -- \"$w/b\" \"$d\"; then printf '@@same %s\\n' \"$d\"; \
                         else t=\"$(dirname -- \"$d\")/.$(basename -- \"$d\").drover-uri.$$\"; \
                         cp -- \"$w/b\" \"$t\" && chmod 0644 -- \"$t\" && mv -f -- \"$t\" \"$d\" || {{ rm -f -- \"$t\"; echo \"writing $d failed\" >&2; exit 98; }}; \
                         printf '@@wrote %s\\n' \"$d\"; fi;; esac; fi\n",
                        ok.join("|")
                    ));
                }
            }
        }
        s.push_str("echo '@@end'\n");
        s
    }

    /// The result Ansible's uri registers for `resp`.
    fn result(&self, req: &Request, resp: &Response) -> Result<Map, ModuleError> {
        let mut m = Map::new();
        if let Some(why) = &resp.skipped {
            m.insert("changed".into(), Value::Bool(false));
            m.insert("stdout".into(), Value::from(why.clone()));
            return Ok(m);
        }
        let masked = mask_url(&self.url);
        if resp.status == 0 {
            m.insert("status".into(), Value::from(-1));
            m.insert("url".into(), Value::from(masked));
            m.insert("elapsed".into(), Value::from(resp.elapsed as i64));
            return Err(ModuleError::Failed {
                msg: format!(
                    "Status code was -1 and not {:?}: Request failed: {}",
                    req.status_ok,
                    resp.stderr.trim()
                ),
                data: m,
            });
        }
        let (reason, headers) = parse_head(&resp.head);
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "content_type")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let length = headers
            .iter()
            .find(|(k, _)| k == "content_length")
            .map(|(_, v)| v.clone());
        for (k, v) in headers {
            m.insert(k, Value::from(v));
        }
        let url = if resp.url.is_empty() {
            masked.clone()
        } else {
            mask_url(&resp.url)
        };
        m.insert("redirected".into(), Value::Bool(url != masked));
        m.insert("url".into(), Value::from(url));
        m.insert("status".into(), Value::from(resp.status));
        m.insert("elapsed".into(), Value::from(resp.elapsed as i64));
        m.insert("changed".into(), Value::Bool(resp.wrote == Some(true)));
        m.insert("cookies".into(), Value::Object(Map::new()));
        let msg = if (200..300).contains(&resp.status) {
            format!("OK ({} bytes)", length.as_deref().unwrap_or("unknown"))
        } else {
            format!("HTTP Error {}: {}", resp.status, reason)
        };
        m.insert("msg".into(), Value::from(msg.clone()));
        if let Some(p) = &resp.path {
            m.insert("path".into(), Value::from(p.clone()));
        } else if let Some(d) = &self.dest {
            m.insert("path".into(), Value::from(d.clone()));
        }
        let subtype = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let subtype = subtype.rsplit('+').next().unwrap_or("");
        let maybe_json = subtype == "json" || subtype == "javascript";
        let text = resp
            .body
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned());
        if maybe_json {
            if let Some(js) = text.as_deref().and_then(|t| serde_json::from_str(t).ok()) {
                m.insert("json".into(), js);
            }
        }
        let ok = req.status_ok.contains(&resp.status);
        if self.return_content || (!ok && resp.rc == 0) {
            if let Some(t) = &text {
                if self.return_content {
                    m.insert("content".into(), Value::from(t.clone()));
                }
            }
        }
        if !ok {
            let msg = format!(
                "Status code was {} and not {:?}: {msg}",
                resp.status, req.status_ok
            );
            m.insert("msg".into(), Value::from(msg.clone()));
            return Err(ModuleError::Failed { msg, data: m });
        }
        if resp.rc != 0 {
            return Err(ModuleError::Failed {
                msg: format!("Request failed: {}", resp.stderr.trim()),
                data: m,
            });
        }
        Ok(m)
    }
}

#[async_trait]
impl Module for Uri {
    const NAME: &'static str = "uri";
    const ARGS: &'static [&'static str] = &[
        "url",
        "method",
        "body",
        "body_format",
        "headers",
        "status_code",
        "return_content",
        "dest",
        "url_username",
        "user",
        "url_password",
        "password",
        "force_basic_auth",
        "validate_certs",
        "timeout",
        "follow_redirects",
        "creates",
        "removes",
        "use_proxy",
        "ca_path",
        "client_cert",
        "client_key",
        "http_agent",
        "unix_socket",
    ];
    type Change = Request;

    fn validate(&self) -> Result<(), super::ArgError> {
        self.request().map(|_| ()).map_err(|e| match e {
            ModuleError::Args(m) => super::ArgError::from(m),
            other => super::ArgError::from(other.to_string()),
        })
    }

    async fn run_imperative(&self, _ctx: &ModuleCtx<'_>) -> Result<Plan<Request>, ModuleError> {
        Ok(Plan::Run(self.request()?))
    }

    async fn apply(&self, ctx: &ModuleCtx<'_>, req: Request) -> Result<Map, ModuleError> {
        let script = self.script(&req);
        let mut stdin = req.config.clone().into_bytes();
        if let Some(b) = &req.body {
            stdin.extend_from_slice(b);
        }
        let out = ctx.remote.exec(&script, &stdin).await?;
        if out.status == 95 {
            return Err(ModuleError::failed(
                "uri needs curl on the host, and it has none (install curl)",
            ));
        }
        if out.status != 0 {
            return Err(ModuleError::failed(format!(
                "uri failed: {}",
                out.stderr_str().trim()
            )));
        }
        let resp = super::reads::parse_read(&out, "the response", parse_response)?;
        self.result(&req, &resp)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::testutil::{assert_args_complete, Harness};

    fn module(v: Value) -> Uri {
        serde_json::from_value(v).expect("args")
    }

    #[test]
    fn args() {
        assert_args_complete::<Uri>();
    }

    #[test]
    fn bodies_are_encoded_as_ansible_encodes_them() {
        let m = module(json!({"url": "http://x/", "method": "POST",
            "body": {"a b": "c&d", "n": [1, 2], "t": true}, "body_format": "form-urlencoded"}));
        let r = m.request().expect("request");
        assert_eq!(r.body.as_deref(), Some(&b"a+b=c%26d&n=1&n=2&t=True"[..]));
        assert!(r
            .config
            .contains("header = \"Content-Type: application/x-www-form-urlencoded\""));
        assert!(!r.config.contains("request ="), "{}", r.config);
        let m = module(
            json!({"url": "http://x/", "method": "PUT", "body": {"k": [1]},
            "body_format": "json", "headers": {"content-type": "application/vnd+json"}}),
        );
        let r = m.request().expect("request");
        assert_eq!(r.body.as_deref(), Some(&b"{\"k\":[1]}"[..]));
        assert!(r.config.contains("request = \"PUT\""));
        assert!(!r.config.contains("application/json"), "{}", r.config);
    }

    #[test]
    fn credentials_and_headers_go_to_the_config_never_the_script() {
        let m = module(
            json!({"url": "https://x/api", "user": "u", "password": "s3cret",
            "headers": {"Authorization": "Bearer t0ken"}, "validate_certs": false,
            "dest": "/tmp/out", "creates": "/tmp/c"}),
        );
        let r = m.request().expect("request");
        assert!(r.config.contains("user = \"u:s3cret\""));
        assert!(r.config.contains("insecure"));
        assert!(r.config.contains("user-agent = \"ansible-httpget\""));
        let m = module(
            json!({"url": "https://x/", "use_proxy": false, "ca_path": "/etc/ca.pem",
            "client_cert": "/c.pem", "client_key": "/k.pem", "http_agent": "lab"}),
        );
        let c = m.request().expect("request").config;
        for want in [
            "noproxy = \"*\"",
            "cacert = \"/etc/ca.pem\"",
            "cert = \"/c.pem\"",
            "key = \"/k.pem\"",
            "user-agent = \"lab\"",
        ] {
            assert!(c.contains(want), "{want} in {c}");
        }
        let script = m.script(&r);
        assert!(
            !script.contains("s3cret") && !script.contains("t0ken"),
            "{script}"
        );
        assert!(script.contains("umask 077"));
    }

    #[test]
    fn refuses_bad_methods_urls_and_headers() {
        for bad in [
            json!({"url": "http://x/", "method": "get"}),
            json!({"url": "http://x/", "method": "GET X"}),
            json!({"url": "ftp://x/"}),
            json!({"url": "http://x/", "headers": {"A": "b\nX-Evil: 1"}}),
            json!({"url": "http://x/", "status_code": ["ok"]}),
        ] {
            assert!(module(bad.clone()).request().is_err(), "{bad}");
        }
        assert!(
            serde_json::from_value::<Uri>(json!({"url": "http://x/", "body_format": "xml"}))
                .is_err()
        );
    }

    #[test]
    fn headers_of_the_last_response_are_named_as_ansible_names_them() {
        let head = "HTTP/1.1 302 Found\r\nLocation: /b\r\n\r\nHTTP/1.0 200 OK\r\nContent-Type: application/json\r\nX-A: 1\r\nx-a: 2\r\n\r\n";
        let (reason, h) = parse_head(head);
        assert_eq!(reason, "OK");
        assert_eq!(
            h,
            vec![
                ("content_type".to_string(), "application/json".to_string()),
                ("x_a".to_string(), "1, 2".to_string())
            ]
        );
        let m = module(json!({"url": "http://u:pw@x/a"}));
        let req = m.request().expect("request");
        let resp = Response {
            status: 200,
            url: "http://x/b".into(),
            head: head.into(),
            body: Some(b"{\"a\": 1}".to_vec()),
            ..Response::default()
        };
        let r = m.result(&req, &resp).expect("ok");
        assert_eq!(r["json"], json!({"a": 1}));
        assert_eq!(r["redirected"], json!(true));
        assert_eq!(r["changed"], json!(false));
        assert_eq!(r["msg"], json!("OK (unknown bytes)"));
        assert!(r.get("content").is_none());
        let resp = Response {
            status: 404,
            head: "HTTP/1.0 404 Not Found\r\n\r\n".into(),
            ..Response::default()
        };
        let Err(ModuleError::Failed { msg, data }) = m.result(&req, &resp) else {
            panic!("a 404 fails");
        };
        assert_eq!(
            msg,
            "Status code was 404 and not [200]: HTTP Error 404: Not Found"
        );
        assert_eq!(data["status"], json!(404));
        assert_eq!(data["url"], json!("http://u:********@x/a"));
    }

    #[test]
    fn the_end_marker_is_not_read_as_curl_errors() {
        let r = parse_response("@@rc 0\n@@w 200 0.01 http://x/\n@@eYQ==\n@@b\n@@end\n")
            .expect("parses");
        assert_eq!((r.status, r.stderr.as_str()), (200, "a"));
        assert_eq!(r.body.as_deref(), Some(&b""[..]));
        assert_eq!(
            parse_response("@@rc 0\n"),
            Err(crate::modules::OutputError::Incomplete)
        );
    }

    #[test]
    fn url_names_and_masks() {
        assert_eq!(url_file_name("http://x/a/b.tgz?x"), "b.tgz");
        assert_eq!(url_file_name("http://x/"), "index.html");
        assert_eq!(url_file_name("http://x"), "index.html");
        assert_eq!(mask_url("http://x/a@b"), "http://x/a@b");
    }

    #[tokio::test]
    async fn a_missing_creates_path_skips_nothing_and_an_existing_one_skips() {
        let h = Harness::new();
        let marker = h.path("m");
        std::fs::write(&marker, "").expect("write");
        let out = h
            .run::<Uri>(
                json!({"url": "http://127.0.0.1:9/", "creates": marker}),
                false,
                false,
            )
            .await
            .expect("skipped");
        assert!(!out.changed);
        assert_eq!(
            out.data["stdout"],
            json!(format!("skipped, since '{marker}' exists"))
        );
        let check = h
            .run::<Uri>(json!({"url": "http://127.0.0.1:9/"}), true, false)
            .await
            .expect("check");
        assert!(check.skipped.is_some());
    }
}
