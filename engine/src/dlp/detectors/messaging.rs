//! Chat, SMS and e-mail service credentials and webhooks beyond Slack and
//! SendGrid.

use super::keyed::keyed_value;
use super::{Anchor, Detector, Group};

pub(super) const TWILIO_KEY: Detector = Detector {
    id: "twilio_key",
    group: Group::Messaging,
    description: "Twilio API key (SK + 32 hex), account SID (AC + 32 hex) or auth token (32 hex) assigned to a twilio name",
    // SK and AC are too short to anchor on: the name they are assigned to
    // is the anchor.
    anchor: Anchor::Literals(&["twilio", "Twilio", "TWILIO"]),
    pattern: concat!(r"(?-u)", keyed!("twilio|Twilio|TWILIO"), r"(?:SK|AC)?[0-9a-f]{32}\b"),
    validator: Some(keyed_value),
    keep_last: 0,
};

pub(super) const MAILGUN_KEY: Detector = Detector {
    id: "mailgun_key",
    group: Group::Messaging,
    description: "Mailgun private API key (key- + 32 hex), public validation key (pubkey- + 32 hex) or webhook signing key (32-8-8 hex) assigned to a mailgun name",
    anchor: Anchor::Literals(&["mailgun", "Mailgun", "MAILGUN"]),
    pattern: concat!(
        r"(?-u)",
        keyed!("mailgun|Mailgun|MAILGUN"),
        r"(?:(?:pub)?key-[a-f0-9]{32}|[a-f0-9]{32}-[a-f0-9]{8}-[a-f0-9]{8})\b",
    ),
    validator: None,
    keep_last: 0,
};

pub(super) const MAILCHIMP_API_KEY: Detector = Detector {
    id: "mailchimp_api_key",
    group: Group::Messaging,
    description: "Mailchimp API key: 32 hex + -us + data center number",
    anchor: Anchor::Literals(&["-us"]),
    pattern: r"(?-u)\b[a-f0-9]{32}-us[0-9]{1,2}\b",
    validator: None,
    keep_last: 0,
};

pub(super) const TELEGRAM_BOT_TOKEN: Detector = Detector {
    id: "telegram_bot_token",
    group: Group::Messaging,
    description: "Telegram bot token: bot id (8-10 digits) : AA + 33 characters (also in a /bot<token>/ API URL), or any bot id : A + 34 characters assigned to a telegram name",
    anchor: Anchor::Literals(&[":AA", "telegram", "Telegram", "TELEGRAM"]),
    pattern: concat!(
        r"(?-u)(?:\b(?:bot)?[0-9]{8,10}:AA[A-Za-z0-9_-]{33,34}|",
        keyed!("telegram|Telegram|TELEGRAM"),
        r"[0-9]{5,16}:A[A-Za-z0-9_-]{34,35})",
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
    description: "Discord webhook URL: discord.com/api/webhooks/<id>/<token> (also discordapp.com, ptb., canary.)",
    anchor: Anchor::Literals(&["discord.com/api/", "discordapp.com/api/"]),
    pattern: concat!(
        r"(?-u)\b(?:https?://)?(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v[0-9]{1,2}/)?webhooks/",
        r"[0-9]{17,20}/[A-Za-z0-9_-]{60,80}",
    ),
    validator: None,
    keep_last: 0,
};

pub(super) const DISCORD_TOKEN: Detector = Detector {
    id: "discord_token",
    group: Group::Messaging,
    description: "Discord bot token (<base64 id>.<6>.<27-38>), API token (64 hex) or client secret (32 characters) assigned to a discord name",
    anchor: Anchor::Literals(&["discord", "Discord", "DISCORD"]),
    pattern: concat!(
        r"(?-u)",
        keyed!("discord|Discord|DISCORD"),
        r"(?:[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}|[a-f0-9]{64}|[A-Za-z0-9_-]{32})\b",
    ),
    validator: Some(keyed_value),
    keep_last: 0,
};

pub(super) const TEAMS_WEBHOOK: Detector = Detector {
    id: "teams_webhook",
    group: Group::Messaging,
    description: "Microsoft Teams / Office 365 incoming webhook URL (webhook.office.com/webhookb2/…), or a Power Automate / Logic Apps workflow trigger URL with its sig=",
    anchor: Anchor::Literals(&["webhook.office.com/webhook", "logic.azure.com", "api.powerplatform.com"]),
    pattern: concat!(
        r"(?-u)\b(?:https://)?(?:",
        r"[a-z0-9-]{1,63}\.webhook\.office\.com/webhookb2/",
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@",
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/IncomingWebhook/[0-9a-f]{32}/",
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:/[A-Za-z0-9_-]{20,80})?",
        r"|(?:[a-z0-9-]{1,40}\.){1,3}(?:logic\.azure\.com|api\.powerplatform\.com)(?::443)?",
        r"/(?:powerautomate/automations/direct/)?workflows/[0-9a-f]{32}/triggers/[A-Za-z0-9_]{1,64}/paths/invoke",
        r"\?(?:[A-Za-z0-9_.-]{1,20}=[A-Za-z0-9%._-]{0,64}&(?:amp;)?){0,4}sig=[A-Za-z0-9_-]{43})",
    ),
    validator: None,
    keep_last: 0,
};
