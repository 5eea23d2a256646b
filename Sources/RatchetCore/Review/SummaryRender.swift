import Foundation

/// The formats `ratchet summary` writes.
public struct SummaryFormat: RawRepresentable, Hashable, Sendable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public static let markdown = SummaryFormat(rawValue: "markdown")
    public static let html = SummaryFormat(rawValue: "html")
    public static let json = SummaryFormat(rawValue: "json")
    /// Every format.
    public static let all: [SummaryFormat] = [.markdown, .html, .json]
    /// The file extension of the copy in `reports/`.
    public var fileExtension: String { self == .markdown ? "md" : rawValue }

    /// Parses `markdown`, `html` or `json` (`md` too).
    public static func parse(_ text: String) throws -> SummaryFormat {
        if text == "md" { return .markdown }
        guard let format = all.first(where: { $0.rawValue == text }) else {
            throw RatchetError("invalid format '\(Names.printable(text))': expected markdown, html or json")
        }
        return format
    }
}

extension WeeklySummary {
    /// The summary in `format`.
    public func rendered(as format: SummaryFormat) throws -> String {
        switch format {
        case .html: return SummaryHTML(summary: self).document()
        case .json:
            let encoder = RatchetJSON.encoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
        default: return SummaryMarkdown(summary: self).document()
        }
    }

    /// `2026-12-02 01:50 UTC`.
    static func time(_ date: Date) -> String { minuteFormatter.string(from: date) }

    /// Made once: a formatter is costly to make and safe to share once configured.
    nonisolated(unsafe) private static let minuteFormatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm 'UTC'"
        return formatter
    }()

    /// `2026-11-30 to 2026-12-06 (UTC)`, with `, so far` for the current week.
    var period: String {
        let day = { (date: Date) in String(Self.time(date).prefix(10)) }
        return "\(day(from)) to \(day(to.addingTimeInterval(-1))) (UTC)" + (isPartial ? ", so far" : "")
    }
}

/// The line a landing's canary and people show as.
extension LandingSummary {
    var verdictLine: String {
        var parts = ["agent \(agent ?? "?")", "canary \(canary ?? "?")", "risk \(risk ?? "?")"]
        if let approvedBy { parts.append("approved by \(approvedBy)" + (approvalNote.map { " (\($0))" } ?? "")) }
        return parts.joined(separator: " · ")
    }

    var metricLine: String? {
        guard !metricChanges.isEmpty else { return nil }
        return metricChanges.map { metric in
            let change = metric.change.map { String(format: "%+.1f%%", $0 * 100) } ?? "n/a"
            return "\(metric.name) \(change) (\(metric.classification))"
        }.joined(separator: ", ")
    }

    /// The objective's first line, at most 200 characters.
    var objectiveLine: String? {
        guard let first = objective?.split(separator: "\n").first.map(String.init), !first.isEmpty else { return nil }
        return first.count > 200 ? String(first.prefix(200)) + "…" : first
    }
}

/// The markdown rendering.
struct SummaryMarkdown {
    let summary: WeeklySummary

    func document() -> String {
        var lines = ["# Ratchet weekly summary \(summary.week)", "",
                     "\(summary.period); generated \(WeeklySummary.time(summary.generatedAt)).", ""]
        for remark in summary.remarks { lines.append("_\(remark)_"); lines.append("") }
        for service in summary.services { lines += section(service) }
        return lines.joined(separator: "\n") + "\n"
    }

    private func section(_ service: ServiceSummary) -> [String] {
        var lines = ["## \(service.name)", "", "Error budget left: \(service.errorBudget).", ""]
        lines += list("Landed", service.landings.flatMap(landing))
        lines += list("Reverted", service.reverts.map { revert in
            "- **\(revert.ticket)** `\(revert.sha.prefix(12))` reverts `\(revert.reverts.prefix(12))`, \(WeeklySummary.time(revert.committedAt))"
                + (revert.by.map { " by \($0)" } ?? "") + ": \(revert.reason ?? "no reason given")\n  - inspect: `\(revert.showCommand)`"
        })
        lines += list("Rejected", service.rejected.map(event))
        lines += list("Escalated", service.escalated.map(event))
        lines += list("Reflection findings", service.findings.map(brief))
        lines += list("Open tickets", service.openTickets.map(brief))
        if !service.otherCommits.isEmpty {
            lines += list("Commits made by hand", service.otherCommits.map { "- `\($0.sha.prefix(12))` \($0.subject)" })
        }
        if !service.missing.isEmpty { lines += list("Missing", service.missing.map { "- \($0)" }) }
        return lines
    }

    private func list(_ title: String, _ items: [String]) -> [String] {
        ["### \(title) (\(items.filter { $0.hasPrefix("- ") }.count))", ""] + (items.isEmpty ? ["none"] : items) + [""]
    }

    private func landing(_ landing: LandingSummary) -> [String] {
        var lines = ["- **\(landing.ticket)** \(landing.title): `\(landing.sha.prefix(12))`, \(WeeklySummary.time(landing.committedAt))"]
        if let objective = landing.objectiveLine { lines.append("  - objective: \(objective)") }
        lines.append("  - \(landing.verdictLine)")
        if let metrics = landing.metricLine { lines.append("  - metric changes: \(metrics)") }
        if let revert = landing.revertedBy { lines.append("  - reverted by `\(revert.prefix(12))`") }
        lines.append("  - inspect: `\(landing.showCommand)`")
        if landing.revertedBy == nil { lines.append("  - undo: `\(landing.revertCommand)`") }
        return lines
    }

    private func event(_ event: TicketEventSummary) -> String {
        "- **\(event.ticket)** \(event.title), \(WeeklySummary.time(event.at))" + (event.by.map { " by \($0)" } ?? "") + ": \(event.reason)"
    }

    private func brief(_ ticket: TicketBrief) -> String {
        "- **\(ticket.id)** \(ticket.title) (\(ticket.state), \(ticket.source))"
    }
}
