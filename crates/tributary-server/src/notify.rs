//! Mail the server sends: the notice to a tenant's admins that capture was turned on.
//! Delivery failures are reported to the caller (the console shows them), never
//! swallowed; the SMTP password is never part of a message.

use crate::SmtpConfig;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// What the notice says.
#[derive(Debug, Clone)]
pub struct CaptureNotice<'a> {
    pub tenant: &'a str,
    pub enabled_by: &'a str,
    pub console_url: &'a str,
}

/// How a notice went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted by the SMTP server for these recipients.
    Sent(Vec<String>),
    /// No SMTP server is configured.
    NotConfigured,
    /// Nobody to send it to.
    NoRecipients,
    /// Why the message could not be built or handed over.
    Failed(String),
}

/// Sends the "capture is on" notice to `recipients` through `smtp`.
pub async fn send_capture_enabled(
    smtp: Option<&SmtpConfig>,
    recipients: &[String],
    notice: &CaptureNotice<'_>,
) -> Delivery {
    let Some(smtp) = smtp else {
        return Delivery::NotConfigured;
    };
    if recipients.is_empty() {
        return Delivery::NoRecipients;
    }
    let message = match capture_message(&smtp.from, recipients, notice) {
        Ok(message) => message,
        Err(reason) => return Delivery::Failed(reason),
    };
    let transport = match transport(smtp) {
        Ok(transport) => transport,
        Err(error) => return Delivery::Failed(format!("cannot reach {}: {error}", smtp.host)),
    };
    match transport.send(message).await {
        Ok(_) => Delivery::Sent(recipients.to_vec()),
        Err(error) => Delivery::Failed(format!(
            "the SMTP server {}:{} did not accept the message: {error}",
            smtp.host, smtp.port
        )),
    }
}

fn capture_message(
    from: &str,
    recipients: &[String],
    notice: &CaptureNotice<'_>,
) -> Result<Message, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("the sender address `{from}` is not usable: {e}"))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(format!("Tributary: capture is on for {}", notice.tenant))
        .header(ContentType::TEXT_PLAIN);
    for recipient in recipients {
        let to: Mailbox = recipient
            .parse()
            .map_err(|e| format!("the admin address `{recipient}` is not usable: {e}"))?;
        builder = builder.to(to);
    }
    builder
        .body(capture_body(notice))
        .map_err(|e| format!("cannot build the message: {e}"))
}

fn capture_body(notice: &CaptureNotice<'_>) -> String {
    format!(
        "Hello,\n\n\
         {by} turned capture on for the Tributary tenant \"{tenant}\".\n\n\
         Tributary now reads the metadata (participants, time, subject as the policy \
         allows) of mail in every linked mailbox, starting with the backfill window, \
         and keeps it up to date.\n\n\
         Review the users and their sync status at {url}/users\n\
         The capture policy is at {url}/policy\n\n\
         You receive this because you are an administrator of this tenant.\n",
        by = notice.enabled_by,
        tenant = notice.tenant,
        url = notice.console_url.trim_end_matches('/'),
    )
}

fn transport(
    smtp: &SmtpConfig,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, lettre::transport::smtp::Error> {
    let mut builder = if smtp.plaintext {
        // A local relay or a test listener: no TLS at all.
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)?
    };
    builder = builder.port(smtp.port);
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> CaptureNotice<'static> {
        CaptureNotice {
            tenant: "acme",
            enabled_by: "ada@acme.test",
            console_url: "http://127.0.0.1:8080/",
        }
    }

    #[tokio::test]
    async fn without_smtp_nothing_is_sent_and_it_says_so() {
        let to = vec!["ada@acme.test".to_owned()];
        assert_eq!(
            send_capture_enabled(None, &to, &notice()).await,
            Delivery::NotConfigured
        );
    }

    #[test]
    fn the_message_names_the_tenant_and_links_the_console() {
        let message = capture_message(
            "tributary@acme.test",
            &["ada@acme.test".to_owned()],
            &notice(),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains("Subject: Tributary: capture is on for acme"),
            "{text}"
        );
        assert!(text.contains("http://127.0.0.1:8080/users"), "{text}");
        assert!(text.contains("To: ada@acme.test"), "{text}");
    }

    #[test]
    fn a_bad_admin_address_is_named() {
        let error = capture_message(
            "tributary@acme.test",
            &["not an address".to_owned()],
            &notice(),
        )
        .unwrap_err();
        assert!(error.contains("`not an address`"), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_failure_not_a_success() {
        // Bind then drop a listener: the port is closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let smtp = SmtpConfig {
            host: "127.0.0.1".to_owned(),
            port,
            from: "tributary@acme.test".to_owned(),
            username: None,
            password: None,
            plaintext: true,
        };
        let to = vec!["ada@acme.test".to_owned()];
        let delivery = send_capture_enabled(Some(&smtp), &to, &notice()).await;
        assert!(matches!(delivery, Delivery::Failed(_)), "{delivery:?}");
    }
}
