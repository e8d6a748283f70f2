//! The command line: `drover apply`, `inventory`, `ping`, `lab`,
//! `known-hosts` and `vault`. Every command returns a [`crate::error::Error`], whose
//! `code()` is the exit code.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod config;
mod list;
mod vault;

use crate::error::Pos;
use crate::error::{exit, Error, InputError, InputErrors};
use crate::executor::{Options, Runner};
use crate::inventory::Inventory;
use crate::playbook::{self, Playbook};
use crate::report::{Format, Reporter, View};
use crate::secret::{RedactingWriter, Redactor, Secret};
use crate::transport::known_hosts::HostKeyChecking;
use crate::{Map, Value};

/// `drover --version`: drover's version and the Ansible it follows.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (follows the semantics of ansible-core 2.19)"
);

/// drover: converge hosts over plain SSH from Ansible-syntax playbooks.
#[derive(Parser, Debug)]
#[command(name = "drover", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a playbook against the inventory's hosts.
    Apply(ApplyArgs),
    /// Show hosts, groups and merged variables.
    Inventory(InventoryArgs),
    /// Connect, authenticate and check sudo on each host.
    Ping(PingArgs),
    /// Start or stop local lab nodes (real OpenSSH servers on 127.0.x.y: the
    /// `--block` of `lab up`, 127.0.2 unless given).
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// Manage known host keys.
    KnownHosts {
        #[command(subcommand)]
        action: KnownHostsAction,
    },
    /// Encrypt and decrypt with Ansible Vault (as ansible-vault).
    Vault {
        #[command(subcommand)]
        action: vault::VaultAction,
    },
    /// Show the settings taken from ansible.cfg and ANSIBLE_* variables,
    /// and where each came from.
    Config(config::ConfigArgs),
}

/// Connection options shared by `apply` and `ping`.
#[derive(Args, Debug, Clone)]
struct ConnArgs {
    /// Inventory file or directory [default: ansible.cfg's inventory, or
    /// inventory/hosts.yml].
    #[arg(short = 'i', long = "inventory")]
    inventory: Option<PathBuf>,
    /// Only hosts matching this pattern.
    #[arg(short = 'l', long)]
    limit: Option<String>,
    /// Parallel hosts (default: all).
    #[arg(short = 'f', long)]
    forks: Option<usize>,
    /// Remote user (overrides ansible_user).
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Private key file for SSH authentication.
    #[arg(long = "private-key")]
    private_key: Option<PathBuf>,
    /// known_hosts file (default ~/.ssh/known_hosts).
    #[arg(long = "known-hosts")]
    known_hosts: Option<PathBuf>,
    /// Host key policy: strict (default) or accept-new.
    #[arg(long = "host-key-checking", value_enum)]
    host_key_checking: Option<HostKeyCheckingArg>,
    /// Ask for the sudo password.
    #[arg(short = 'K', long = "ask-become-pass")]
    ask_become_pass: bool,
    /// Ask for the SSH password (first contact with a new node).
    #[arg(short = 'k', long = "ask-pass")]
    ask_pass: bool,
    /// Connection timeout in seconds [default: ansible.cfg's timeout, or
    /// ConnectTimeout from ~/.ssh/config, or 10].
    #[arg(short = 'T', long = "timeout")]
    timeout: Option<u64>,
    /// Extra variables: KEY=VALUE, YAML/JSON text, or @file.yml.
    #[arg(short = 'e', long = "extra-vars")]
    extra_vars: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputArg::Human)]
    output: OutputArg,
    /// More output (-vvv shows the commands run).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(flatten)]
    vault: VaultArgs,
    /// ansible.cfg's `remote_user` (no flag: `-u` overrides every host's).
    #[arg(skip)]
    remote_user: Option<String>,
    /// ansible.cfg's `ssh_args`.
    #[arg(skip)]
    ssh_args: Option<String>,
}

/// The inventory read when neither `-i` nor ansible.cfg names one.
const DEFAULT_INVENTORY: &str = "inventory/hosts.yml";

impl ConnArgs {
    fn inventory(&self) -> &Path {
        self.inventory
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_INVENTORY))
    }
}

/// Where the vault passwords of a run come from (as ansible-playbook).
#[derive(Args, Debug, Clone, Default)]
struct VaultArgs {
    /// Vault password file, or an executable script that prints the password.
    #[arg(
        long = "vault-password-file",
        visible_alias = "vault-pass-file",
        env = "ANSIBLE_VAULT_PASSWORD_FILE",
        value_name = "FILE"
    )]
    vault_password_file: Vec<PathBuf>,
    /// A vault id and where its password comes from: LABEL@FILE,
    /// LABEL@SCRIPT or LABEL@prompt (or the source alone).
    #[arg(long = "vault-id", value_name = "ID")]
    vault_id: Vec<String>,
    /// Ask for the vault password (not echoed).
    #[arg(
        short = 'J',
        long = "ask-vault-pass",
        visible_alias = "ask-vault-password"
    )]
    ask_vault_pass: bool,
}

#[derive(Args, Debug)]
struct ApplyArgs {
    /// The playbook to run.
    playbook: PathBuf,
    #[command(flatten)]
    conn: ConnArgs,
    /// Only tasks with these tags.
    #[arg(short = 't', long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    skip_tags: Vec<String>,
    /// Report what would change; change nothing.
    #[arg(short = 'C', long)]
    check: bool,
    /// Show the changes to files.
    #[arg(short = 'D', long)]
    diff: bool,
    /// Run each task's state reads on their own instead of batching the
    /// reads of upcoming tasks into one round trip (for measuring).
    #[arg(long = "no-read-ahead")]
    no_read_ahead: bool,
    /// After the recap, list the slowest tasks with how long each took.
    #[arg(long)]
    timings: bool,
    /// Load and check the playbook, then stop: nothing connects.
    #[arg(long = "syntax-check")]
    syntax_check: bool,
    /// List each play's hosts, then stop.
    #[arg(long = "list-hosts")]
    list_hosts: bool,
    /// List each play's tasks (as --tags and --skip-tags select them), then stop.
    #[arg(long = "list-tasks")]
    list_tasks: bool,
    /// List each play's tags, then stop.
    #[arg(long = "list-tags")]
    list_tags: bool,
    /// Skip the tasks before the first one with this name.
    #[arg(long = "start-at-task", value_name = "NAME")]
    start_at_task: Option<String>,
    /// Ask before each task whether to run it (needs a terminal).
    #[arg(long)]
    step: bool,
    /// Become (sudo) where no keyword or variable says otherwise.
    #[arg(short = 'b', long = "become")]
    become_: bool,
    /// The user to become (default root).
    #[arg(long = "become-user", value_name = "USER")]
    become_user: Option<String>,
    /// How to become: sudo or su.
    #[arg(long = "become-method", value_name = "METHOD")]
    become_method: Option<String>,
}

#[derive(Args, Debug)]
struct InventoryArgs {
    /// Inventory file or directory [default: ansible.cfg's inventory, or
    /// inventory/hosts.yml].
    #[arg(short = 'i', long = "inventory")]
    inventory: Option<PathBuf>,
    /// Print the JSON of `ansible-inventory --list` (the default).
    #[arg(long, conflicts_with_all = ["host", "graph"])]
    list: bool,
    /// Show the group tree.
    #[arg(long, conflicts_with = "host")]
    graph: bool,
    /// Show one host's merged variables.
    #[arg(long)]
    host: Option<String>,
    #[command(flatten)]
    vault: VaultArgs,
}

#[derive(Args, Debug)]
struct PingArgs {
    #[command(flatten)]
    conn: ConnArgs,
}

#[derive(Subcommand, Debug)]
enum LabAction {
    /// Start lab nodes and write their inventory and known_hosts.
    Up {
        /// Number of nodes.
        #[arg(short = 'n', long, default_value_t = crate::lab::DEFAULT_NODES)]
        nodes: usize,
        /// Lab directory.
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,
        /// Address block: the first three octets of the node addresses (node K
        /// listens on BLOCK.K).
        #[arg(long, default_value = crate::lab::DEFAULT_BLOCK)]
        block: String,
        /// Nodes' architecture: `native` (this machine's userland) or
        /// `arm64` (Debian bookworm arm64 under qemu-user, as on the
        /// Raspberry Pis; sshd only, no init system). arm64 registers qemu
        /// for aarch64 executables machine-wide and builds its root once
        /// into /var/cache/drover-lab (needs qemu-user-static, mmdebstrap,
        /// arch-test and the Debian archive).
        #[arg(long, default_value = "native")]
        arch: crate::lab::Arch,
    },
    /// Stop every node and remove the lab.
    Down {
        /// Lab directory.
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// List the lab's nodes.
    Status {
        /// Lab directory.
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Power one node off (its files stay; `drover lab start` boots it again).
    Stop {
        /// Node name.
        node: String,
        /// Lab directory.
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,
    },
    /// Boot a stopped node again, on the files it had.
    Start {
        /// Node name.
        node: String,
        /// Lab directory.
        #[arg(long, default_value = crate::lab::DEFAULT_DIR)]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum KnownHostsAction {
    /// Remove a host's keys (after a node was reinstalled).
    Forget {
        /// Host name or address as written in known_hosts.
        host: String,
        /// Port.
        #[arg(long, default_value_t = 22)]
        port: u16,
        /// known_hosts file.
        #[arg(long = "known-hosts")]
        known_hosts: Option<PathBuf>,
    },
}

/// `--output`: the values of [`Format`], spelled for the command line
/// (clap stays out of the library's types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputArg {
    /// Ansible-like lines.
    Human,
    /// One JSON object per event.
    Json,
}

impl From<OutputArg> for Format {
    fn from(o: OutputArg) -> Format {
        match o {
            OutputArg::Human => Format::Human,
            OutputArg::Json => Format::Json,
        }
    }
}

/// `--host-key-checking`: the values of [`HostKeyChecking`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum HostKeyCheckingArg {
    /// Unknown hosts are refused.
    Strict,
    /// Unknown hosts are learned; changed keys are still refused.
    AcceptNew,
}

impl From<HostKeyCheckingArg> for HostKeyChecking {
    fn from(h: HostKeyCheckingArg) -> HostKeyChecking {
        match h {
            HostKeyCheckingArg::Strict => HostKeyChecking::Strict,
            HostKeyCheckingArg::AcceptNew => HostKeyChecking::AcceptNew,
        }
    }
}

/// Ansible's setting for keys written twice in one YAML mapping: `warn`
/// (default), `error` or `ignore`.
const DUPLICATE_KEYS_ENV: &str = "ANSIBLE_DUPLICATE_YAML_DICT_KEY";

/// Run the binary; returns the exit code.
pub fn main() -> i32 {
    match run() {
        Ok(()) => exit::OK,
        Err(e) => {
            if e.needs_message() {
                say_err(&format!("ERROR: {e}"));
            }
            e.code()
        }
    }
}

fn run() -> Result<(), Error> {
    let mut cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return Err(if e.use_stderr() {
                Error::Usage
            } else {
                Error::Help
            });
        }
    };
    let verbosity = match &cli.command {
        Command::Apply(a) => a.conn.verbose,
        Command::Ping(p) => p.conn.verbose,
        _ => 0,
    };
    init_tracing(verbosity);
    if let Some(v) = std::env::var_os(DUPLICATE_KEYS_ENV) {
        match v.to_string_lossy().parse::<crate::yaml::DuplicateKeys>() {
            Ok(policy) => crate::yaml::set_duplicate_keys(policy),
            Err(e) => return Err(Error::Invalid(format!("{DUPLICATE_KEYS_ENV}: {e}"))),
        }
    }
    let settings = config::load(&cli.command)?;
    if let Some(s) = &settings {
        config::complete(&mut cli.command, s);
    }
    let vault = match &cli.command {
        Command::Apply(a) => Some(&a.conn.vault),
        Command::Ping(p) => Some(&p.conn.vault),
        Command::Inventory(i) => Some(&i.vault),
        _ => None,
    };
    if let Some(v) = vault {
        // Before anything is loaded: vars files may be encrypted.
        crate::vault::set_secrets(vault_secrets(v)?);
    }
    match cli.command {
        Command::Apply(args) => apply(args),
        Command::Inventory(args) => inventory(args),
        Command::Ping(args) => ping(args),
        Command::Lab { action } => lab(action),
        Command::KnownHosts { action } => known_hosts(action),
        Command::Vault { action } => vault::run(action),
        Command::Config(args) => config::show(&args, &settings.unwrap_or_default()),
    }
}

/// The secrets of this run, shared by the log writer and the reporter:
/// what the executor learns while running (a password templated from a
/// vault variable) is masked in logs as in output.
static SECRETS: std::sync::LazyLock<Redactor> =
    std::sync::LazyLock::new(|| crate::secret::run_redactor().clone());

fn init_tracing(verbosity: u8) {
    let level = match verbosity {
        0 => "warn",
        // -v says what drover removed that an earlier run left behind.
        1 => "warn,drover::cleanup=info",
        // -vv also says where each host's SSH settings came from.
        2 => "warn,drover::cleanup=info,drover::ssh_config=info",
        3 => "drover=debug",
        _ => "drover=trace,russh=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Escapes only for a terminal: `-vvv 2>log` must stay readable.
    let ansi = crate::report::color_wanted(std::io::stderr().is_terminal());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(|| RedactingWriter::new(SECRETS.clone(), std::io::stderr()))
        .with_target(false)
        .try_init();
}

#[allow(clippy::print_stderr)]
fn say_err(msg: &str) {
    eprintln!("{msg}");
}

/// A line on stdout. When the reader has gone (`drover config | head -3`)
/// the command stops quietly, as a program killed by SIGPIPE would (exit
/// 141), instead of panicking as `println!` does.
fn say(msg: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{msg}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        say_err(&format!("drover: cannot write to stdout: {e}"));
    }
}

/// Warnings found while reading input, for commands without a reporter.
fn say_load_warnings() {
    for w in crate::yaml::take_warnings() {
        say_err(&format!("[WARNING]: {w}"));
    }
}

/// Parse `-e` values.
fn extra_vars(values: &[String]) -> Result<Map, InputErrors> {
    let mut out = Map::new();
    for v in values {
        let pos = Pos::file_start(Path::new("<extra-vars>"));
        if let Some(file) = v.strip_prefix('@') {
            let doc = crate::yaml::load_file(Path::new(file))?;
            match doc.to_value() {
                Value::Object(m) => out.extend(m),
                _ => return Err(doc.error("extra vars file must be a mapping").into()),
            }
        } else if v.trim_start().starts_with('{') {
            let doc = crate::yaml::load_str(v, Path::new("<extra-vars>"))?;
            match doc.to_value() {
                Value::Object(m) => out.extend(m),
                _ => return Err(InputError::new(pos, "extra vars must be a mapping").into()),
            }
        } else {
            let kv = match crate::modules::cmdargs::parse_kv(v, true) {
                Ok(kv) => kv,
                Err(crate::modules::cmdargs::KvError::NotKv(_)) => {
                    return Err(InputError::new(
                        pos,
                        format!("cannot parse extra vars '{v}': expected KEY=VALUE"),
                    )
                    .into())
                }
                Err(e) => return Err(InputError::new(pos, e.to_string()).into()),
            };
            out.extend(kv.into_iter().map(|(k, v)| (k, Value::String(v))));
        }
    }
    Ok(out)
}

fn prompt(what: &str) -> Result<Secret, Error> {
    rpassword::prompt_password(format!("{what}: "))
        .map(Secret::new)
        .map_err(|source| Error::Prompt {
            what: what.to_string(),
            source,
        })
}

/// The run's vault passwords, in the order given: `--vault-id`s, then
/// `--ask-vault-pass`, then password files.
fn vault_secrets(args: &VaultArgs) -> Result<Vec<crate::vault::VaultSecret>, Error> {
    use crate::vault::{password_from, split_vault_id, VaultSecret, DEFAULT_ID};
    let from_file =
        |path: &Path, id: &str| password_from(path, id).map_err(|e| Error::Invalid(e.to_string()));
    let ask = |id: &str| -> Result<VaultSecret, Error> {
        let what = if id == DEFAULT_ID {
            "Vault password".to_string()
        } else {
            format!("Vault password ({id})")
        };
        let password = prompt(&what)?;
        if password.expose().is_empty() {
            return Err(Error::Invalid("invalid vault password: empty".into()));
        }
        Ok(VaultSecret {
            id: id.to_string(),
            password,
        })
    };
    let mut out = Vec::new();
    for arg in &args.vault_id {
        let (id, source) = split_vault_id(arg);
        out.push(if source == "prompt" {
            ask(id)?
        } else {
            from_file(Path::new(source), id)?
        });
    }
    if args.ask_vault_pass {
        out.push(ask(DEFAULT_ID)?);
    }
    for path in &args.vault_password_file {
        out.push(from_file(path, DEFAULT_ID)?);
    }
    Ok(out)
}

fn options(conn: &ConnArgs, extra: Map) -> Result<Options, Error> {
    if let Some(path) = &conn.known_hosts {
        if let Err(e) = crate::localfs::target(path) {
            return Err(Error::Invalid(format!("--known-hosts: {e}")));
        }
    }
    Ok(Options {
        forks: conn.forks,
        limit: conn.limit.clone(),
        extra_vars: extra,
        user: conn.user.clone(),
        private_key: conn.private_key.clone(),
        known_hosts: conn.known_hosts.clone(),
        host_key_checking: conn.host_key_checking.map(HostKeyChecking::from),
        become_password: if conn.ask_become_pass {
            Some(prompt("BECOME password")?)
        } else {
            None
        },
        ssh_password: if conn.ask_pass {
            Some(prompt("SSH password")?)
        } else {
            None
        },
        connect_timeout: Duration::from_secs(conn.timeout.unwrap_or(10).max(1)),
        remote_user: conn.remote_user.clone(),
        ssh_args: conn.ssh_args.clone(),
        connect_timeout_set: conn.timeout.is_some(),
        ..Options::default()
    })
}

/// Secrets known before the run: prompted passwords, and passwords given
/// in the inventory or with `-e` (templated ones are learned when the
/// executor resolves them).
fn redactor(opts: &Options, inv: &Inventory) -> Redactor {
    let r = SECRETS.clone();
    for s in [&opts.become_password, &opts.ssh_password]
        .into_iter()
        .flatten()
    {
        r.add(s);
    }
    let literal = |v: &Value| matches!(v, Value::String(s) if !s.contains("{{"));
    for vars in inv
        .hosts
        .values()
        .map(|h| &h.vars)
        .chain([&opts.extra_vars])
    {
        for key in crate::secret::SECRET_VARS {
            if let Some(v) = vars.get(*key).filter(|v| literal(v)) {
                r.add_value(v);
            }
        }
    }
    r
}

/// Load, check and run a playbook.
fn run_playbook(
    pb: &Playbook,
    inv: &Inventory,
    opts: &Options,
    output: Format,
    view: View,
) -> Result<(), Error> {
    let redactor = redactor(opts, inv);
    let (tx, rx) = crate::report::channel();
    // Warnings from loading (duplicate keys) come first, before anything runs.
    for w in crate::yaml::take_warnings() {
        tx.send(crate::report::Event::Warning(w));
    }
    let mut reporter = Reporter::stdout(output, view, redactor.clone());
    let printer = std::thread::spawn(move || {
        for ev in rx {
            reporter.handle(&ev);
        }
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return Err(Error::Runtime(e)),
    };
    let events = tx.clone();
    let runner = Runner::new(pb, inv, opts, tx, redactor);
    let refused = match runner.resolve_hosts() {
        Err(e) => Some(format!("{e}")),
        // As ansible-playbook: a limit that leaves nothing to do is a
        // mistake (a typo in a host name), not a successful empty run.
        Ok(targets) => match &opts.limit {
            Some(limit) if targets.iter().all(Vec::is_empty) => Some(format!(
                "--limit '{limit}' leaves no hosts to run on: it matches none of the hosts the plays target"
            )),
            _ => None,
        },
    };
    if let Some(msg) = refused {
        // Let the reporter show the load warnings before the error.
        drop(runner);
        drop(events);
        let _ = printer.join();
        return Err(Error::Invalid(msg));
    }
    let result = runtime.block_on(run_interruptible(runner, events));
    let _ = printer.join();
    match result {
        Ok(_) if crate::interrupt::interrupted() => Err(Error::Interrupted),
        Ok(Some(summary)) => summary.outcome(),
        Ok(None) => Err(Error::Interrupted),
        Err(e) => Err(e.into()),
    }
}

/// How long an interrupted run may take to stop the commands running on
/// the hosts and remove its temporary files there.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Run the plays until SIGINT or SIGTERM; then stop the commands running
/// on the hosts, remove drover's directories there (within
/// [`STOP_GRACE`]) and send the recap so far. A second signal exits at
/// once. `None` when the run was cut short before its own recap.
async fn run_interruptible(
    runner: Runner<'_>,
    events: crate::report::EventSink,
) -> Result<Option<crate::executor::Summary>, InputErrors> {
    use tokio::signal::unix::{signal, SignalKind};
    let pool = runner.pool();
    let progress = runner.progress();
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return runner.run().await.map(Some);
    };
    let mut run = Box::pin(runner.run());
    tokio::select! {
        result = &mut run => return result.map(Some),
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    crate::interrupt::interrupt();
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        std::process::exit(Error::Interrupted.code());
    });
    events.send(crate::report::Event::Warning(
        "interrupted: stopping the commands running on the hosts".into(),
    ));
    let stop = tokio::time::timeout(STOP_GRACE, pool.stop_remote());
    let wind_down = tokio::time::timeout(STOP_GRACE, &mut run);
    let (_, finished) = tokio::join!(stop, wind_down);
    let result = match finished {
        Ok(result) => result.map(Some),
        Err(_) => {
            let recap = progress.lock().unwrap_or_else(|e| e.into_inner()).clone();
            events.send(crate::report::Event::Recap(recap));
            Ok(None)
        }
    };
    // Commands still running on channels of their own get a TERM request
    // as their processes are dropped, before the connections close.
    drop(run);
    pool.close_all().await;
    result
}

fn apply(args: ApplyArgs) -> Result<(), Error> {
    if let Some(m) = args
        .become_method
        .as_deref()
        .filter(|m| crate::transport::BecomeMethod::parse(m).is_none())
    {
        return Err(Error::Invalid(format!(
            "--become-method {m} is not supported by drover (it becomes with sudo or su)"
        )));
    }
    let step = if args.step {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Invalid(
                "--step asks before each task and needs a terminal on standard input".into(),
            ));
        }
        Some(step_prompt())
    } else {
        None
    };
    let extra = extra_vars(&args.conn.extra_vars)?;
    if args.syntax_check && !args.conn.inventory().exists() {
        // A role's test playbook is often checked without an inventory:
        // load it; variables an inventory would define cannot be checked.
        playbook::load_playbook_with(&args.playbook, &extra)?;
        say_load_warnings();
        say_err(&format!(
            "[WARNING]: no inventory at {}: undefined variables not checked",
            args.conn.inventory().display()
        ));
        say(&format!("\nplaybook: {}", args.playbook.display()));
        return Ok(());
    }
    let mut inv = Inventory::load(args.conn.inventory())?;
    let pb = playbook::load_playbook_with(&args.playbook, &extra)?;
    inv.add_playbook_vars(&pb.dir)?;
    for w in playbook::check::check(&pb, &inv, &extra)? {
        say_err(&format!("[WARNING]: {w}"));
    }
    if args.syntax_check {
        say_load_warnings();
        say(&format!("\nplaybook: {}", args.playbook.display()));
        return Ok(());
    }
    let what = list::Listing {
        hosts: args.list_hosts,
        tasks: args.list_tasks,
        tags: args.list_tags,
    };
    if what.hosts || what.tasks || what.tags {
        say_load_warnings();
        let filter = list::Filter {
            tags: &args.tags,
            skip: &args.skip_tags,
            limit: args.conn.limit.as_deref(),
        };
        say(list::listing(&pb, &inv, what, &filter)?.trim_end());
        return Ok(());
    }
    if let Some(name) = &args.start_at_task {
        if !list::has_task_named(&pb, name) {
            return Err(Error::Invalid(format!(
                "--start-at-task: no task named '{name}' (tasks of include_tasks cannot be started at)"
            )));
        }
    }
    let mut opts = options(&args.conn, extra)?;
    opts.check = args.check;
    opts.no_read_ahead = args.no_read_ahead;
    opts.diff = args.diff;
    opts.tags = args.tags;
    opts.skip_tags = args.skip_tags;
    opts.become_ = args.become_;
    opts.become_user = args.become_user;
    opts.become_method = args.become_method;
    opts.start_at_task = args.start_at_task;
    opts.step = step;
    let view = View {
        verbosity: args.conn.verbose,
        diff: args.diff,
        timings: args.timings,
        ..View::default()
    };
    run_playbook(&pb, &inv, &opts, args.conn.output.into(), view)
}

/// `--step`: ask on the terminal before each task, as ansible-playbook
/// does; "c" stops asking.
fn step_prompt() -> crate::executor::Step {
    let go_on = std::sync::atomic::AtomicBool::new(false);
    crate::executor::Step(std::sync::Arc::new(move |task: &str| {
        use std::sync::atomic::Ordering;
        if go_on.load(Ordering::SeqCst) {
            return true;
        }
        loop {
            ask(&format!(
                "Perform task: TASK: {task} (N)o/(y)es/(c)ontinue: "
            ));
            let mut line = String::new();
            match std::io::stdin().read_line(&mut line) {
                // End of input: run nothing more without asking.
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            match step_answer(&line) {
                Some(StepAnswer::Yes) => return true,
                Some(StepAnswer::No) => return false,
                Some(StepAnswer::Continue) => {
                    go_on.store(true, Ordering::SeqCst);
                    return true;
                }
                None => {}
            }
        }
    }))
}

/// An answer to the `--step` question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepAnswer {
    Yes,
    No,
    Continue,
}

/// Ansible's answers: empty or "n" is no, "y" yes, "c" continue.
fn step_answer(line: &str) -> Option<StepAnswer> {
    match line.trim().to_ascii_lowercase().as_str() {
        "" | "n" | "no" => Some(StepAnswer::No),
        "y" | "yes" => Some(StepAnswer::Yes),
        "c" | "continue" => Some(StepAnswer::Continue),
        _ => None,
    }
}

#[allow(clippy::print_stdout)]
fn ask(msg: &str) {
    use std::io::Write;
    print!("{msg}");
    let _ = std::io::stdout().flush();
}

const PING_PLAYBOOK: &str = r#"
- name: ping
  hosts: all
  gather_facts: false
  tasks:
    - name: connect and authenticate
      command: id -un
      changed_when: false
    - name: sudo
      command: id -u
      become: true
      changed_when: false
      failed_when: ping_sudo.stdout != '0'
      register: ping_sudo
"#;

fn ping(args: PingArgs) -> Result<(), Error> {
    let extra = extra_vars(&args.conn.extra_vars)?;
    let inv = Inventory::load(args.conn.inventory())?;
    let pb = playbook::load_playbook_str(PING_PLAYBOOK, Path::new("<ping>"))?;
    let opts = options(&args.conn, extra)?;
    let view = View {
        verbosity: args.conn.verbose,
        ..View::default()
    };
    run_playbook(&pb, &inv, &opts, args.conn.output.into(), view)
}

fn inventory(args: InventoryArgs) -> Result<(), Error> {
    let path = args
        .inventory
        .unwrap_or_else(|| PathBuf::from(DEFAULT_INVENTORY));
    let inv = Inventory::load(&path)?;
    say_load_warnings();
    if args.list {
        say(&serde_json::to_string_pretty(&inv.to_json()).unwrap_or_default());
    } else if args.graph {
        say(inv.to_string().trim_end());
    } else if let Some(h) = args.host {
        match inv.host_vars_json(&h) {
            Some(v) => say(&serde_json::to_string_pretty(&v).unwrap_or_default()),
            None => {
                return Err(Error::Invalid(format!(
                    "no host '{h}' in {}",
                    path.display()
                )));
            }
        }
    } else {
        say(&serde_json::to_string_pretty(&inv.to_json()).unwrap_or_default());
    }
    Ok(())
}

fn lab(action: LabAction) -> Result<(), Error> {
    use crate::lab::{Lab, LabConfig};
    let result = match action {
        LabAction::Up {
            nodes,
            dir,
            block,
            arch,
        } => {
            if arch == crate::lab::Arch::Arm64 && !crate::lab::arm64::root_is_built() {
                say(&format!(
                    "building the arm64 root into {} (once; several minutes)",
                    crate::lab::arm64::root_path().display()
                ));
            }
            let cfg = LabConfig {
                dir,
                block,
                nodes,
                arch,
                background: true,
                ..LabConfig::default()
            };
            Lab::start(cfg).map(|lab| {
                for n in lab.nodes() {
                    say(&format!("{:<14} {}:{}", n.name, n.address, n.port));
                }
                say(&format!("inventory:   {}", lab.inventory_path().display()));
                say(&format!(
                    "known_hosts: {}",
                    lab.known_hosts_path().display()
                ));
                say(&format!("key:         {}", lab.key_path().display()));
                let dir = lab.keep_running();
                say(&format!("stop with:   {}", crate::lab::down_command(&dir)));
            })
        }
        LabAction::Down { dir } => Lab::attach(&dir).and_then(Lab::stop),
        LabAction::Status { dir } => Lab::attach(&dir).map(|lab| {
            for n in lab.nodes() {
                let state = if n.pid.is_some() {
                    "running"
                } else {
                    "stopped"
                };
                say(&format!("{:<14} {}:{} {state}", n.name, n.address, n.port));
            }
            warn_foreign_listeners(&lab);
        }),
        LabAction::Stop { node, dir } => Lab::attach(&dir).and_then(|mut lab| lab.stop_node(&node)),
        LabAction::Start { node, dir } => {
            Lab::attach(&dir).and_then(|mut lab| lab.start_node(&node))
        }
    };
    Ok(result?)
}

/// Nodes share the machine's network: a daemon in a node listening on
/// another address (127.0.0.1, 0.0.0.0) collides with the same daemon in
/// the next node, or with the machine's own.
fn warn_foreign_listeners(lab: &crate::lab::Lab) {
    for n in lab.nodes().iter().filter(|n| n.pid.is_some()) {
        for l in lab.foreign_listeners(&n.name).unwrap_or_default() {
            say_err(&format!(
                "WARNING: lab node {} listens outside its address {}: {l}",
                n.name, n.address
            ));
        }
    }
}

fn known_hosts(action: KnownHostsAction) -> Result<(), Error> {
    match action {
        KnownHostsAction::Forget {
            host,
            port,
            known_hosts,
        } => {
            let path = known_hosts.unwrap_or_else(|| {
                crate::transport::known_hosts::default_path(
                    &std::env::var_os("HOME")
                        .map(PathBuf::from)
                        .unwrap_or_default(),
                )
            });
            match crate::transport::known_hosts::forget(&path, &host, port) {
                Ok(n) => {
                    say(&format!(
                        "removed {n} key(s) for {host} from {}",
                        path.display()
                    ));
                    Ok(())
                }
                Err(source) => Err(Error::KnownHosts { path, source }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_spellings_map_to_the_library_types() {
        let cli = Cli::try_parse_from([
            "drover",
            "apply",
            "site.yml",
            "--output",
            "json",
            "--host-key-checking",
            "accept-new",
        ])
        .expect("parses");
        let Command::Apply(a) = cli.command else {
            panic!("not apply");
        };
        assert_eq!(Format::from(a.conn.output), Format::Json);
        assert_eq!(
            a.conn.host_key_checking.map(HostKeyChecking::from),
            Some(HostKeyChecking::AcceptNew)
        );
        let bad = Cli::try_parse_from(["drover", "apply", "x.yml", "--output", "yaml"]);
        assert!(bad.is_err());
    }

    fn apply_args(args: &[&str]) -> ApplyArgs {
        let cli = Cli::try_parse_from(["drover", "apply", "site.yml"].iter().chain(args))
            .expect("parses");
        match cli.command {
            Command::Apply(a) => a,
            other => panic!("not apply: {other:?}"),
        }
    }

    #[test]
    fn ansible_playbook_options_parse() {
        let a = apply_args(&[
            "-b",
            "--become-user",
            "postgres",
            "--become-method",
            "sudo",
            "-t",
            "a,b",
            "--start-at-task",
            "configure",
            "--step",
            "--syntax-check",
            "--list-hosts",
            "--list-tasks",
            "--list-tags",
        ]);
        assert!(a.become_ && a.step && a.syntax_check);
        assert!(a.list_hosts && a.list_tasks && a.list_tags);
        assert_eq!(a.become_user.as_deref(), Some("postgres"));
        assert_eq!(a.become_method.as_deref(), Some("sudo"));
        assert_eq!(a.tags, ["a", "b"]);
        assert_eq!(a.start_at_task.as_deref(), Some("configure"));
        let a = apply_args(&["--become"]);
        assert!(a.become_ && !a.step);
    }

    #[test]
    fn become_methods_other_than_sudo_and_su_are_refused() {
        let err = apply(apply_args(&["--become-method", "doas"])).expect_err("refused");
        assert!(
            err.to_string()
                .contains("--become-method doas is not supported"),
            "{err}"
        );
        assert_eq!(err.code(), exit::INVALID);
    }

    #[test]
    fn step_answers_are_ansibles() {
        assert_eq!(step_answer("y\n"), Some(StepAnswer::Yes));
        assert_eq!(step_answer("\n"), Some(StepAnswer::No));
        assert_eq!(step_answer("N"), Some(StepAnswer::No));
        assert_eq!(step_answer("c\n"), Some(StepAnswer::Continue));
        assert_eq!(step_answer("maybe"), None);
    }

    #[test]
    fn version_names_the_ansible_core_it_follows() {
        use clap::CommandFactory;
        let v = Cli::command().render_version();
        assert!(v.starts_with("drover "), "{v}");
        assert!(v.contains("ansible-core 2.19"), "{v}");
    }

    #[test]
    fn inventory_list_is_an_option_exclusive_of_graph_and_host() {
        let cli =
            Cli::try_parse_from(["drover", "inventory", "--list", "-i", "x.yml"]).expect("parses");
        let Command::Inventory(i) = cli.command else {
            panic!("not inventory");
        };
        assert!(i.list);
        assert!(Cli::try_parse_from(["drover", "inventory", "--list", "--graph"]).is_err());
        assert!(Cli::try_parse_from(["drover", "inventory", "--list", "--host", "h"]).is_err());
    }
}
