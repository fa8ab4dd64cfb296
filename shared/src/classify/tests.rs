use super::*;

fn split(reply: &str) -> (u16, Option<String>, String) {
    let (code, rest) = reply.split_once(' ').unwrap();
    let (first, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let enhanced = first.chars().next().is_some_and(|c| c.is_ascii_digit()) && first.contains('.');
    if enhanced {
        (code.parse().unwrap(), Some(first.to_string()), text.to_string())
    } else {
        (code.parse().unwrap(), None, rest.to_string())
    }
}

/// Every reply in DOMAIN.md section 2, with the category and action it must get.
#[test]
fn every_documented_provider_reply_gets_its_category_and_action() {
    use Action::*;
    use Category::*;
    let cases = [
        ("550 5.1.1 The email account that you tried to reach does not exist", InvalidRecipient, BounceAndSuppress),
        ("552 5.2.2 The recipient's inbox is out of storage and inactive", InactiveMailbox, BounceAndSuppress),
        ("550 5.2.1 The email account that you tried to reach is inactive", InactiveMailbox, BounceAndSuppress),
        ("452 4.2.2 The recipient's inbox is out of storage space", MailboxFull, Retry),
        ("450 4.2.1 The user you are trying to contact is receiving mail too quickly", Transient, Retry),
        (
            "421 4.7.28 Our system has detected an unusual rate of unsolicited email originating from your IP \
             address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited",
            Throttled,
            Slow,
        ),
        (
            "550 5.7.28 Our system has detected an unusual rate of unsolicited email originating from your IP \
             address. To protect our users from spam, mail sent from your IP address has been blocked",
            ReputationBlock,
            Fail,
        ),
        (
            "550 5.7.26 Unauthenticated email from shop.example is not accepted due to domain's DMARC policy",
            AuthFailure,
            Suspend,
        ),
        ("421 4.7.32 Your email has been rate limited because the From: header isn't aligned", AuthFailure, Suspend),
        ("421 4.7.27 This mail has been rate limited because SPF did not pass", AuthFailure, Suspend),
        ("550 5.7.27 This mail has been blocked because the sender is unauthenticated (SPF)", AuthFailure, Suspend),
        ("421 4.7.30 This mail has been rate limited because DKIM did not pass", AuthFailure, Suspend),
        ("421 4.7.31 This mail has been rate limited because the sender has no DMARC record", AuthFailure, Suspend),
        ("550 5.7.25 The IP address sending this message does not have a PTR record", Policy, Fail),
        ("421 4.7.1 Messages to icloud.com temporarily deferred due to unexpected volume", Throttled, Slow),
        ("550 Unknown user ann@ezweb.ne.jp", InvalidRecipient, BounceAndSuppress),
        ("421 4.7.23 The sending IP does not have a PTR record", Policy, Retry),
        ("421 4.7.29 Your email has been rate limited because it is not using a TLS connection", TlsRequired, Retry),
        ("550 5.7.1 Our system has detected that this message is likely unsolicited mail", SpamContent, Fail),
        (
            "421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints",
            Throttled,
            Suspend,
        ),
        (
            "553 5.7.2 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed",
            ReputationBlock,
            Fail,
        ),
        (
            "554 delivery error: dd This user doesn't have a yahoo.com account (ann@yahoo.com) [0]",
            InvalidRecipient,
            BounceAndSuppress,
        ),
        (
            "451 4.7.650 The mail server [192.0.2.1] has been temporarily rate limited due to IP reputation",
            Throttled,
            Slow,
        ),
        ("550 5.7.606 Access denied, banned sending IP [192.0.2.1]", ReputationBlock, Fail),
        ("550 5.5.0 Requested action not taken: mailbox unavailable", InvalidRecipient, BounceAndSuppress),
        (
            "550 5.7.515 Access denied, sending domain does not meet the required authentication level",
            AuthFailure,
            Suspend,
        ),
        ("451 4.3.0 Temporary server error", Transient, Retry),
        ("554 5.0.0 Something unexpected", Other, Bounce),
    ];
    let c = Classifier::builtin();
    for (reply, category, action) in cases {
        let (code, enhanced, text) = split(reply);
        let rule = c.classify(code, enhanced.as_deref(), &text);
        assert_eq!((rule.category, rule.action), (category, action), "{reply} matched {}", rule.name);
    }
}

#[test]
fn throttling_rules_carry_their_destination_action() {
    let c = Classifier::builtin();
    let google = c.classify(421, Some("4.7.28"), "temporarily rate limited");
    assert_eq!(
        google.destination,
        Some(DestinationAction::Slow { factor: 0.1, duration: Span::try_from("10m").unwrap() })
    );
    let yahoo = c.classify(421, Some("4.7.0"), "[TSS04] temporarily deferred");
    assert_eq!(yahoo.destination, Some(DestinationAction::Suspend { duration: Span::try_from("2h").unwrap() }));
    assert_eq!(c.classify(550, Some("5.1.1"), "no").destination, None);
    let unauthenticated = c.classify(550, Some("5.7.26"), "Unauthenticated email");
    assert_eq!(
        unauthenticated.destination,
        Some(DestinationAction::Suspend { duration: Span::try_from("1h").unwrap() })
    );
}

#[test]
fn operator_rules_come_first_and_a_rules_file_adds_more() {
    let inline: Vec<RuleSpec> = toml::from_str::<RuleFile>(
        r#"
        [[rule]]
        name = "our-relay-quota"
        code = "^452$"
        text = "(?i)quota"
        category = "throttled"
        action = "suspend"
        for = "15m"
        "#,
    )
    .unwrap()
    .rule;
    let dir = std::env::temp_dir().join(format!("sluice-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules.toml");
    std::fs::write(&file, "[[rule]]\nenhanced = '^5\\.1\\.1$'\ncategory = \"other\"\naction = \"bounce\"\n").unwrap();
    let c = Classifier::new(&inline, Some(file.to_str().unwrap())).unwrap();
    let quota = c.classify(452, Some("4.2.2"), "Quota exceeded for this hour");
    assert_eq!((quota.name.as_str(), quota.action), ("our-relay-quota", Action::Suspend));
    assert_eq!(c.classify(550, Some("5.1.1"), "x").action, Action::Bounce, "the file overrides the built-in rule");
    assert_eq!(c.classify(452, Some("4.2.2"), "inbox full").category, Category::MailboxFull);
}

#[test]
fn bad_rules_name_the_rule_and_field() {
    let spec = |text: &str| toml::from_str::<RuleFile>(text).unwrap().rule;
    let bad_regex = spec("[[rule]]\ntext = \"(unclosed\"\ncategory = \"other\"\naction = \"bounce\"\n");
    let e = Classifier::new(&bad_regex, None).unwrap_err();
    assert_eq!(e.location, "bounces.rules[0].text");
    let bad_factor = spec("[[rule]]\ncode = \"^4\"\ncategory = \"throttled\"\naction = \"slow\"\nfactor = 1.5\n");
    assert_eq!(Classifier::new(&bad_factor, None).unwrap_err().location, "bounces.rules[0].factor");
    let empty = spec("[[rule]]\ncategory = \"other\"\naction = \"bounce\"\n");
    assert!(Classifier::new(&empty, None).unwrap_err().problem.contains("at least one of"));
    let stray = spec("[[rule]]\ncode = \"^5\"\ncategory = \"other\"\naction = \"bounce\"\nfor = \"1m\"\n");
    assert_eq!(Classifier::new(&stray, None).unwrap_err().location, "bounces.rules[0].action");
    assert!(toml::from_str::<RuleFile>("[[rule]]\ncode = \"^5\"\ncategory = \"nope\"\naction = \"bounce\"\n").is_err());
    let missing = Classifier::new(&[], Some("/nonexistent/rules.toml")).unwrap_err();
    assert_eq!(missing.location, "bounces.rules_file");
}
