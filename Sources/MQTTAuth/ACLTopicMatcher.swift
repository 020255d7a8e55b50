/// How ACL rule filters relate to topic names and requested filters, level by level.
///
/// `wildcardsMatchDollarTopics` decides whether a `+` or `#` in the first level of a rule reaches topics
/// that start with `$`: MQTT's own matching says no ([MQTT-4.7.2-1]); deny rules say yes, so that
/// `deny publish all #` really denies everything.
enum ACLTopicMatcher {
    /// `true` when `topic` (a topic name's levels) matches `rule`.
    static func matches(rule: [Substring], topic: [Substring], wildcardsMatchDollarTopics: Bool) -> Bool {
        if !wildcardsMatchDollarTopics, let first = rule.first, first == "+" || first == "#", topic.first?.hasPrefix("$") == true {
            return false
        }
        var index = 0
        while index < rule.count {
            let level = rule[index]
            if level == "#" { return true }  // also matches the parent level: `a/#` matches `a`
            guard index < topic.count else { return false }
            if level != "+" && level != topic[index] { return false }
            index += 1
        }
        return index == topic.count
    }

    /// `true` when every topic `requested` (a subscription filter's levels) can match also matches `rule`:
    /// the subscription stays within what the rule names.
    static func covers(rule: [Substring], requested: [Substring], wildcardsMatchDollarTopics: Bool) -> Bool {
        if !wildcardsMatchDollarTopics, let first = rule.first, first == "+" || first == "#", requested.first?.hasPrefix("$") == true {
            return false
        }
        var index = 0
        while index < rule.count {
            let level = rule[index]
            if level == "#" { return true }
            guard index < requested.count else { return false }
            let asked = requested[index]
            if asked == "#" { return false }  // the rule is narrower from here on
            if asked == "+" {
                guard level == "+" else { return false }
            } else if level != "+" && level != asked {
                return false
            }
            index += 1
        }
        return index == requested.count
    }

    /// `true` when some topic matches both `rule` and `requested` (a subscription filter's levels).
    static func overlaps(rule: [Substring], requested: [Substring], wildcardsMatchDollarTopics: Bool) -> Bool {
        if let ruleFirst = rule.first, let askedFirst = requested.first {
            let ruleWild = ruleFirst == "+" || ruleFirst == "#"
            let askedWild = askedFirst == "+" || askedFirst == "#"
            // A subscription starting with a wildcard never receives `$` topics ([MQTT-4.7.2-1]).
            if askedWild && !ruleWild && ruleFirst.hasPrefix("$") { return false }
            if ruleWild && !askedWild && askedFirst.hasPrefix("$") && !wildcardsMatchDollarTopics { return false }
        }
        var index = 0
        while true {
            let ruleEnded = index == rule.count
            let askedEnded = index == requested.count
            if ruleEnded && askedEnded { return true }
            if !ruleEnded && rule[index] == "#" { return true }
            if !askedEnded && requested[index] == "#" { return true }
            if ruleEnded || askedEnded { return false }
            let level = rule[index]
            let asked = requested[index]
            if level != "+" && asked != "+" && level != asked { return false }
            index += 1
        }
    }
}
