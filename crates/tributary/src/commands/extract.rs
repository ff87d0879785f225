//! `tributary extract`: what capture derives from .eml files, one JSON line per file.

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tributary_core::{
    CapturePolicy, Extraction, Extractor, FreeMailList, MessageRecord, PrivacyMode, TenantDirectory,
};

#[derive(Args)]
#[command(
    after_help = "Each line holds: participants with role (from, to, cc, bcc) and \
classification (member, internal, external), direction (outbound, inbound, internal), dedupe \
and thread keys, contacts and their companies, whether the message is automated and why, the \
capture decision under the given policy, and any header problems found. Only headers are read.

Without --domain or --member every address is external. A file that cannot be read gives a \
line {\"file\": ..., \"error\": ...} and the command exits with status 1 after the other files.

Example:
  tributary extract --domain acme.com \\
    --member ann@acme.com=ann.lee@acme.com,al@acme.com --member bob@acme.com msg1.eml msg2.eml"
)]
pub struct ExtractArgs {
    /// A domain the tenant owns (subdomains included). Repeatable.
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,

    /// A member: PRIMARY, or PRIMARY=ALIAS1,ALIAS2 to give their aliases. Repeatable.
    #[arg(long = "member", value_name = "PRIMARY[=ALIAS,...]")]
    pub members: Vec<String>,

    /// How much of a message to keep: metadata (no subject), subject, or snippet.
    #[arg(long, value_name = "MODE", default_value = "subject")]
    pub privacy: PrivacyMode,

    /// Capture internal mail (no external participant) instead of excluding it.
    #[arg(long)]
    pub include_internal: bool,

    /// Capture automated mail (lists, bulk, auto-replies, no-reply senders).
    #[arg(long)]
    pub include_automated: bool,

    /// Block an address or a domain (subdomains included). Repeatable.
    #[arg(long = "block", value_name = "ADDRESS|DOMAIN")]
    pub blocklist: Vec<String>,

    /// Add a domain to the default free-mail list. Repeatable.
    #[arg(long = "free-mail", value_name = "DOMAIN")]
    pub free_mail_added: Vec<String>,

    /// Remove a domain from the default free-mail list. Repeatable.
    #[arg(long = "not-free-mail", value_name = "DOMAIN")]
    pub free_mail_removed: Vec<String>,

    /// .eml files (RFC 5322 messages) to extract.
    #[arg(required = true, value_name = "FILE.eml")]
    pub files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct ExtractedLine<'a> {
    file: String,
    #[serde(flatten)]
    extraction: &'a Extraction,
}

#[derive(Serialize)]
struct FailedLine {
    file: String,
    error: String,
}

pub fn run(args: ExtractArgs) -> anyhow::Result<ExitCode> {
    let extractor = extractor(&args)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut all_read = true;
    for path in &args.files {
        let file = path.display().to_string();
        let line = match std::fs::read(path) {
            Ok(raw) => {
                let extraction = extractor.extract(&MessageRecord::from_rfc5322(&raw));
                serde_json::to_string(&ExtractedLine {
                    file,
                    extraction: &extraction,
                })?
            }
            Err(error) => {
                all_read = false;
                serde_json::to_string(&FailedLine {
                    file,
                    error: error.to_string(),
                })?
            }
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(if all_read {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn extractor(args: &ExtractArgs) -> anyhow::Result<Extractor> {
    let mut tenant = TenantDirectory::new();
    for domain in &args.domains {
        tenant.add_domain(domain)?;
    }
    for member in &args.members {
        let (primary, aliases) = member.split_once('=').unwrap_or((member, ""));
        let aliases = aliases.split(',').filter(|alias| !alias.trim().is_empty());
        tenant
            .add_member(primary, aliases)
            .with_context(|| format!("--member {member}"))?;
    }
    let mut free_mail = FreeMailList::default();
    for domain in &args.free_mail_added {
        anyhow::ensure!(
            free_mail.insert(domain),
            "--free-mail {domain}: not a domain"
        );
    }
    for domain in &args.free_mail_removed {
        free_mail.remove(domain);
    }
    let mut policy = CapturePolicy {
        exclude_internal: !args.include_internal,
        exclude_automated: !args.include_automated,
        privacy: args.privacy,
        ..CapturePolicy::default()
    };
    for entry in &args.blocklist {
        policy.blocklist.add(entry)?;
    }
    Ok(Extractor::new(tenant, free_mail, policy))
}
