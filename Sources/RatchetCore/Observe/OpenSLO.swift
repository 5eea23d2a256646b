import Foundation

/// The OpenSLO v1 shape of `slos.yaml` (github.com/OpenSLO/OpenSLO, `apiVersion: openslo/v1`):
/// `kind: SLO` documents with a `ratioMetric` indicator whose `good` (or `bad`) and `total`
/// carry a Prometheus `metricSource.spec.query`; one rolling `timeWindow`; budgeting
/// method `Occurrences`; one objective (`target` or `targetPercent`). `kind: SLI`
/// documents serve `indicatorRef`. Other kinds (Service, DataSource, AlertPolicy, …) are
/// allowed and ignored; the burn-rate policy is always the standard four pairs.
enum OpenSLO {
    static let apiVersion = "openslo/v1"
    static let ignoredKinds: Set<String> = ["Service", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"]

    /// One result per `kind: SLO` document, in file order.
    static func slos(_ documents: [YAMLFields]) throws -> [Result<SLO, RatchetError>] {
        var indicators: [String: YAMLFields] = [:]
        var sloDocuments: [YAMLFields] = []
        for document in documents {
            let version = try document.string("apiVersion")
            guard version == apiVersion else {
                throw document.fail("apiVersion", "expected '\(apiVersion)' (an OpenSLO v1 document) or a top-level 'slos:' list, got '\(Names.printable(version ?? "nothing"))'")
            }
            switch try document.requiredString("kind") {
            case "SLO": sloDocuments.append(document)
            case "SLI":
                if let metadata = try document.nested("metadata"), let spec = try document.nested("spec") {
                    indicators[try metadata.requiredString("name")] = spec
                }
            case let kind where ignoredKinds.contains(kind): continue
            case let kind: throw document.fail("kind", "unknown OpenSLO kind '\(Names.printable(kind))'")
            }
        }
        return sloDocuments.map { document in Result { try slo(document, indicators: indicators) }.mapError(asRatchetError) }
    }

    private static func slo(_ document: YAMLFields, indicators: [String: YAMLFields]) throws -> SLO {
        guard let metadata = try document.nested("metadata") else { throw document.fail("metadata", "is required") }
        guard let spec = try document.nested("spec") else { throw document.fail("spec", "is required") }
        try spec.rejectUnknown(["description", "service", "indicator", "indicatorRef", "timeWindow", "budgetingMethod", "objectives", "alertPolicies"])
        let ratio = try ratioMetric(spec, indicators: indicators)
        if let method = try spec.string("budgetingMethod"), method != "Occurrences" {
            throw spec.fail("budgetingMethod", "only Occurrences is supported (good/total events over the window), got '\(Names.printable(method))'")
        }
        var slo = SLO(name: try CheckName.parse(metadata, "name"),
                      description: try spec.string("description") ?? metadata.string("displayName") ?? "",
                      objective: try objective(spec), window: try window(spec),
                      good: try query(ratio, "good"), bad: try query(ratio, "bad"), total: try query(ratio, "total") ?? "",
                      isCounter: try ratio.bool("counter") ?? true, policy: BurnRateRule.standard)
        if slo.total.isEmpty { throw ratio.fail("total", "is required") }
        try SLOsFile.checkQueries(slo, ratio, good: "good", bad: "bad", total: "total")
        slo.total = slo.total.trimmingCharacters(in: .whitespacesAndNewlines)
        return slo
    }

    /// `spec.indicator.spec.ratioMetric`, inline or through `indicatorRef`.
    private static func ratioMetric(_ spec: YAMLFields, indicators: [String: YAMLFields]) throws -> YAMLFields {
        let indicator: YAMLFields
        if let inline = try spec.nested("indicator") {
            guard let inner = try inline.nested("spec") else { throw inline.fail("spec", "is required") }
            indicator = inner
        } else if let reference = try spec.string("indicatorRef") {
            guard let found = indicators[reference] else { throw spec.fail("indicatorRef", "no kind: SLI document named '\(Names.printable(reference))' in this file") }
            indicator = found
        } else {
            throw spec.fail("indicator", "is required (or indicatorRef)")
        }
        guard let ratio = try indicator.nested("ratioMetric") else {
            throw indicator.fail("ratioMetric", "is required: only ratio SLIs (good or bad over total) are supported")
        }
        try ratio.rejectUnknown(["counter", "good", "bad", "total", "rawType"])
        return ratio
    }

    /// `KEY.metricSource.spec.query`, when KEY is given.
    private static func query(_ ratio: YAMLFields, _ key: String) throws -> String? {
        guard let side = try ratio.nested(key) else { return nil }
        guard let source = try side.nested("metricSource") else { throw side.fail("metricSource", "is required") }
        if let type = try source.string("type"), type.lowercased() != "prometheus" {
            throw source.fail("type", "only Prometheus (PromQL) sources are supported, got '\(Names.printable(type))'")
        }
        guard let sourceSpec = try source.nested("spec") else { throw source.fail("spec", "is required") }
        return try sourceSpec.requiredString("query")
    }

    /// The one objective's `target` (0–1) or `targetPercent` (0–100).
    private static func objective(_ spec: YAMLFields) throws -> Double {
        guard let objectives = try spec.mappingList("objectives"), objectives.count == 1 else {
            throw spec.fail("objectives", "give exactly one objective")
        }
        let objective = objectives[0]
        if objective.has("targetPercent") { return try SLOsFile.objective(objective, "targetPercent", percent: true) }
        return try SLOsFile.objective(objective, "target")
    }

    /// The one rolling `timeWindow`'s duration.
    private static func window(_ spec: YAMLFields) throws -> Double {
        guard let windows = try spec.mappingList("timeWindow"), windows.count == 1 else {
            throw spec.fail("timeWindow", "give exactly one time window")
        }
        let window = windows[0]
        if try window.bool("isRolling") == false {
            throw window.fail("isRolling", "calendar windows are not supported; use a rolling window")
        }
        return try SLOsFile.window(window, "duration")
    }
}
