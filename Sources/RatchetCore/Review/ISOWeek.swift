import Foundation

/// An ISO 8601 week in UTC (`2026-W49`): Monday 00:00 to the next Monday 00:00.
public struct ISOWeek: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The ISO week-numbering year.
    public let year: Int
    /// The week, 1–53.
    public let week: Int

    private static let utc: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    /// The week that holds `date`.
    public init(containing date: Date) {
        let year = Self.utc.component(.year, from: date)
        for candidate in [year + 1, year, year - 1] {
            let monday = Self.mondayOfWeekOne(candidate)
            if date >= monday {
                self.year = candidate
                week = Int(date.timeIntervalSince(monday) / 604_800) + 1
                return
            }
        }
        self.year = year - 1
        week = 1
    }

    private init(year: Int, week: Int) {
        self.year = year
        self.week = week
    }

    /// Parses `YYYY-Www` (`2026-W49`); anything else, or a week the year does not have, is an error.
    public static func parse(_ text: String) throws -> ISOWeek {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 3, parts[1].first == "W",
              let year = Int(parts[0]), let week = Int(parts[1].dropFirst()), year >= 1970, week >= 1 else {
            throw RatchetError("invalid week '\(Names.printable(text))': expected YYYY-Www, e.g. 2026-W05")
        }
        let candidate = ISOWeek(year: year, week: week)
        guard week <= candidate.weeksInYear else {
            throw RatchetError("invalid week '\(text)': \(year) has \(candidate.weeksInYear) ISO weeks")
        }
        return candidate
    }

    /// Monday 00:00 UTC of this week.
    public var start: Date { Self.mondayOfWeekOne(year).addingTimeInterval(Double(week - 1) * 604_800) }

    /// Monday 00:00 UTC of the next week (exclusive end).
    public var end: Date { start.addingTimeInterval(604_800) }

    /// The number of ISO weeks of `year` (52 or 53).
    var weeksInYear: Int { ISOWeek(containing: Self.mondayOfWeekOne(year + 1).addingTimeInterval(-1)).week }

    /// Monday of the week that holds 4 January (ISO week 1).
    private static func mondayOfWeekOne(_ year: Int) -> Date {
        let january4 = utc.date(from: DateComponents(year: year, month: 1, day: 4))!
        let daysSinceMonday = (utc.component(.weekday, from: january4) + 5) % 7
        return january4.addingTimeInterval(-Double(daysSinceMonday) * 86_400)
    }

    /// `2026-W05`.
    public var description: String { String(format: "%04d-W%02d", year, week) }

    public static func < (lhs: ISOWeek, rhs: ISOWeek) -> Bool { (lhs.year, lhs.week) < (rhs.year, rhs.week) }
}
