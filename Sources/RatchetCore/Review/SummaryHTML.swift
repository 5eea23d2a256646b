import Foundation

/// The HTML rendering: one self-contained page (inline style, no scripts, no links out).
struct SummaryHTML {
    let summary: WeeklySummary

    func document() -> String {
        var body = "<h1>Ratchet weekly summary \(e(summary.week))</h1>\n<p class=\"period\">\(e(summary.period)); generated \(e(WeeklySummary.time(summary.generatedAt))).</p>\n"
        for remark in summary.remarks { body += "<p class=\"remark\">\(e(remark))</p>\n" }
        for service in summary.services { body += section(service) }
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>Ratchet weekly summary \(e(summary.week))</title>
            <style>
            body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
            h1 { font-size: 1.6rem; } h2 { border-bottom: 2px solid #d0d0d7; padding-bottom: .2rem; margin-top: 2rem; }
            h3 { font-size: 1.05rem; margin-bottom: .3rem; } .period, .remark, .none { color: #555; }
            li { margin: .4rem 0; } code { font: 13px ui-monospace, monospace; background: #f2f2f5; padding: 0 .25rem; border-radius: 3px; }
            .meta { color: #444; } .missing li { color: #a33; } .budget { font-weight: 600; }
            </style></head>
            <body>
            \(body)</body></html>

            """
    }

    private func section(_ service: ServiceSummary) -> String {
        var html = "<section><h2>\(e(service.name))</h2>\n<p class=\"budget\">Error budget left: \(e(service.errorBudget)).</p>\n"
        html += list("Landed", service.landings.map(landing))
        html += list("Reverted", service.reverts.map { revert in
            "<b>\(e(revert.ticket))</b> <code>\(e(String(revert.sha.prefix(12))))</code> reverts <code>\(e(String(revert.reverts.prefix(12))))</code>, "
                + e(WeeklySummary.time(revert.committedAt)) + (revert.by.map { " by \(e($0))" } ?? "")
                + ": \(e(revert.reason ?? "no reason given"))<br><span class=\"meta\">inspect: <code>\(e(revert.showCommand))</code></span>"
        })
        html += list("Rejected", service.rejected.map(event))
        html += list("Escalated", service.escalated.map(event))
        html += list("Reflection findings", service.findings.map(brief))
        html += list("Open tickets", service.openTickets.map(brief))
        if !service.otherCommits.isEmpty {
            html += list("Commits made by hand", service.otherCommits.map { "<code>\(e(String($0.sha.prefix(12))))</code> \(e($0.subject))" })
        }
        if !service.missing.isEmpty { html += list("Missing", service.missing.map(e), cssClass: "missing") }
        return html + "</section>\n"
    }

    private func list(_ title: String, _ items: [String], cssClass: String = "") -> String {
        let head = "<h3>\(e(title)) (\(items.count))</h3>\n"
        if items.isEmpty { return head + "<p class=\"none\">none</p>\n" }
        return head + "<ul class=\"\(cssClass)\">\n" + items.map { "<li>\($0)</li>\n" }.joined() + "</ul>\n"
    }

    private func landing(_ landing: LandingSummary) -> String {
        var html = "<b>\(e(landing.ticket))</b> \(e(landing.title)): <code>\(e(String(landing.sha.prefix(12))))</code>, \(e(WeeklySummary.time(landing.committedAt)))"
        if let objective = landing.objectiveLine { html += "<br><span class=\"meta\">objective: \(e(objective))</span>" }
        html += "<br><span class=\"meta\">\(e(landing.verdictLine))</span>"
        if let metrics = landing.metricLine { html += "<br><span class=\"meta\">metric changes: \(e(metrics))</span>" }
        if let revert = landing.revertedBy { html += "<br><span class=\"meta\">reverted by <code>\(e(String(revert.prefix(12))))</code></span>" }
        html += "<br><span class=\"meta\">inspect: <code>\(e(landing.showCommand))</code></span>"
        if landing.revertedBy != nil { return html }
        return html + "<br><span class=\"meta\">undo: <code>\(e(landing.revertCommand))</code></span>"
    }

    private func event(_ event: TicketEventSummary) -> String {
        "<b>\(e(event.ticket))</b> \(e(event.title)), \(e(WeeklySummary.time(event.at)))" + (event.by.map { " by \(e($0))" } ?? "") + ": \(e(event.reason))"
    }

    private func brief(_ ticket: TicketBrief) -> String {
        "<b>\(e(ticket.id))</b> \(e(ticket.title)) (\(e(ticket.state)), \(e(ticket.source)))"
    }

    /// Escapes text for HTML (and shows control characters escaped).
    private func e(_ text: String) -> String {
        let shown = Names.escapedForTerminal(text)
        guard shown.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else { return shown }
        var out = ""
        for scalar in shown.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension Workspace {
    /// Builds the summary, renders it in `format` and keeps a copy in `reports/`
    /// (`2026-W49.md`, `2026-W49-svc.json` for one service). Returns the text and the copy's path.
    /// `deliver` runs first (writing `--output`): when it fails, no copy is kept either.
    public func writeSummary(_ request: SummaryRequest, format: SummaryFormat,
                             deliver: (String) throws -> Void = { _ in }) throws -> (text: String, report: String) {
        let summary = try summary(request)
        let text = try summary.rendered(as: format)
        try deliver(text)
        let folder = root.appendingPathComponent("reports")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let name = summary.week + (request.service.map { "-\($0)" } ?? "") + "." + format.fileExtension
        let url = folder.appendingPathComponent(name)
        try Data(text.utf8).write(to: url, options: .atomic)
        return (text, url.path)
    }
}
