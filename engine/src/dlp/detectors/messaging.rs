//! Chat, SMS and e-mail service credentials and webhooks beyond Slack and
//! SendGrid.

use super::keyed::{keyed_value};
use super::{Anchor, Detector, Group};

pub(super) const TWILIO_KEY: Detector = Detector {
    id: "twilio_key",
    group: Group::Messaging,
    description: describe!("Twilio API key (SK + 32 hex), account SID (AC + 32 hex) or auth token (32 hex) assigned to a twilio name"),
    // SK and AC are too short to anchor on: the name they are assigned to
    // is the anchor.
    anchor: Anchor::Literals(&["twilio", "Twilio", "TWILIO"]),
    pattern: concat!(r"(?-u)", keyed!("twilio|Twilio|TWILIO"), r"(?:SK|AC)?[\da-f]{32}\b"),
    validator: Some(keyed_value),
    keep_last: 0,
};

pub(super) const MAILGUN_KEY: Detector = Detector {
    id: "mailgun_key",
    group: Group::Messaging,
    description: describe!("Mailgun private (key-), public (pubkey-) or webhook signing key assigned to a mailgun name"),
    anchor: Anchor::Literals(&["mailgun", "Mailgun", "MAILGUN"]),
    pattern: concat!(
        r"(?-u)",
        keyed!("mailgun|Mailgun|MAILGUN"),
        r"(?:(?:pub)?key-[\da-f]{32}|[\da-f]{32}-[\da-f]{8}-[\da-f]{8})\b",
    ),
    validator: None,
    keep_last: 0,
};

pub(super) const MAILCHIMP_API_KEY: Detector = Detector {
    id: "mailchimp_api_key",
    group: Group::Messaging,
    description: describe!("Mailchimp API key: 32 hex + -us + data center number"),
    anchor: Anchor::Literals(&["-us"]),
    pattern: r"(?-u)\b[\da-f]{32}-us\d{1,2}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const BREVO_API_KEY: Detector = Detector {
    id: "brevo_api_key",
    group: Group::Messaging,
    description: describe!("Brevo (formerly Sendinblue) API key (xkeysib-) or SMTP key (xsmtpsib-): 64 hex, -, 16 characters"),
    anchor: Anchor::Literals(&["xkeysib-", "xsmtpsib-"]),
    pattern: r"(?-u)\bx(?:key|smtp)sib-[\da-f]{64}-[A-Za-z\d]{16}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const TELEGRAM_BOT_TOKEN: Detector = Detector {
    id: "telegram_bot_token",
    group: Group::Messaging,
    description: describe!("Telegram bot token: <bot id>:AA + 33 characters (also in /bot<token>/ URLs), or <id>:A + 34 assigned to a telegram name"),
    anchor: Anchor::Literals(&[":AA", "telegram", "Telegram", "TELEGRAM"]),
    pattern: concat!(
        r"(?-u)(?:\b(?:bot)?\d{8,10}:AA[\w-]{33,34}|",
        keyed!("telegram|Telegram|TELEGRAM"),
        r"\d{5,16}:A[\w-]{34,35})",
    ),
    validator: Some(telegram_bot_token),
    keep_last: 0,
};

/// The secret after the colon is 35 characters; a 36th is a longer run.
fn telegram_bot_token(m: &[u8]) -> bool {
    m.rsplit(|&b| b == b':').next().is_some_and(|s| s.len() == 35)
}

pub(super) const DISCORD_WEBHOOK: Detector = Detector {
    id: "discord_webhook",
    group: Group::Messaging,
    description: describe!("Discord webhook URL: discord.com/api/webhooks/<id>/<token> (also discordapp.com, ptb., canary.)"),
    anchor: Anchor::Literals(&["discord.com/api/", "discordapp.com/api/"]),
    pattern: concat!(
        r"(?-u)\b(?:https?://)?(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v\d{1,2}/)?webhooks/",
        r"\d{17,20}/[\w-]{60,80}",
    ),
    validator: None,
    keep_last: 0,
};

pub(super) const DISCORD_TOKEN: Detector = Detector {
    id: "discord_token",
    group: Group::Messaging,
    description: describe!("Discord bot token (<base64 id>.<6>.<27-38>), API token (64 hex) or client secret (32 characters) assigned to a discord name"),
    anchor: Anchor::Literals(&["discord", "Discord", "DISCORD"]),
    pattern: concat!(
        r"(?-u)",
        keyed!("discord|Discord|DISCORD"),
        r"(?:[MNO][\w-]{23,25}\.[\w-]{6}\.[\w-]{27,38}|[\da-f]{64}|[\w-]{32})\b",
    ),
    validator: Some(keyed_value),
    keep_last: 0,
};

pub(super) const TEAMS_WEBHOOK: Detector = Detector {
    id: "teams_webhook",
    group: Group::Messaging,
    description: describe!("Microsoft Teams incoming webhook (webhook.office.com/webhookb2/…), or a Power Automate / Logic Apps workflow URL with its sig="),
    anchor: Anchor::Literals(&["webhook.office.com/webhook", "logic.azure.com", "api.powerplatform.com"]),
    pattern: concat!(
        r"(?-u)\b(?:https://)?(?:",
        r"[a-z\d-]{1,63}\.webhook\.office\.com/webhookb2/",
        r"[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}@",
        r"[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}/IncomingWebhook/[\da-f]{32}/",
        r"[\da-f]{8}(?:-[\da-f]{4}){3}-[\da-f]{12}(?:/[\w-]{20,80})?",
        r"|(?:[a-z\d-]{1,40}\.){1,3}(?:logic\.azure\.com|api\.powerplatform\.com)(?::443)?",
        r"/(?:powerautomate/automations/direct/)?workflows/[\da-f]{32}/triggers/\w{1,64}/paths/invoke",
        r"\?(?:[\w.-]{1,20}=[\w%.-]{0,64}&(?:amp;)?){0,4}sig=[\w-]{43})",
    ),
    validator: None,
    keep_last: 0,
};
