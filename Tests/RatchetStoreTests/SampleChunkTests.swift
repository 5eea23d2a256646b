import Foundation
import GRDB
import Testing
@testable import RatchetStore

/// The XOR chunk encoding of raw samples (adr/0062): every sample comes back bit for bit.
@Suite struct SampleChunkTests {
    /// Deterministic pseudo-random numbers (SplitMix64).
    struct Numbers {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func roundTrips(_ samples: SampleChunk.Samples) throws -> Bool {
        let decoded = try SampleChunk.decode(SampleChunk.encode(samples))
        return decoded.count == samples.count
            && zip(decoded, samples).allSatisfy { $0.time == $1.time && $0.value.bitPattern == $1.value.bitPattern }
    }

    @Test func everySampleComesBackBitForBit() throws {
        var numbers = Numbers(state: 20261202)
        for shape in 0..<6 {
            var samples: SampleChunk.Samples = []
            var time: Int64 = shape == 5 ? -3_600_000 : 1_800_000_000_000, counter = 0.0
            for index in 0..<500 {
                let step: Int64
                switch shape {
                case 0: step = 15_000                                                   // a regular scrape
                case 1: step = 15_000 + Int64(numbers.next() % 17) * 125 - 1000         // jitter
                case 2: step = 1 + Int64(numbers.next() % 3_000_000)                    // irregular, within the widest bucket
                case 3: step = index % 7 == 0 ? 86_400_000 * 400 : 1                    // gaps beyond every bucket
                default: step = Int64(numbers.next() % 60_000) + 1
                }
                time += step
                counter += Double(numbers.next() % 40)
                let value: Double
                switch numbers.next() % 12 {
                case 0: value = .nan
                case 1: value = .infinity
                case 2: value = -.infinity
                case 3: value = Double(bitPattern: numbers.next())                       // any bit pattern, NaN payloads too
                case 4: value = -0.0
                case 5: value = 0
                default: value = shape == 4 ? Double(numbers.next() % 1000) / 8 : counter
                }
                samples.append((time, value))
            }
            #expect(try Self.roundTrips(samples), "shape \(shape)")
        }
        #expect(try Self.roundTrips([]))
        #expect(try Self.roundTrips([(42, 1.5)]))
        #expect(try Self.roundTrips([(.min, .nan), (0, 1), (.max, -1)]))
    }

    @Test func aRegularCounterTakesAboutTwoBytesASampleAndACutChunkIsAnError() throws {
        let samples = (0..<240).map { (time: Int64(1_800_000_000_000) + Int64($0) * 15_000, value: Double($0 * 7)) }
        let data = SampleChunk.encode(samples)
        #expect(data.count < 240 * 2, "\(data.count) bytes")
        #expect(throws: (any Error).self) { try SampleChunk.decode(data.prefix(data.count / 2)) }
    }

    /// `v13-metrics-chunks` moves every row of `metricSample` into hourly chunks (NULL, NaN
    /// before, comes back as NaN) and drops the table.
    @Test func theMigrationMovesRowsIntoHourlyChunks() throws {
        let queue = try DatabaseQueue()
        try RatchetDatabase.migrator.migrate(queue, upTo: "v12-loop")
        let hour: Int64 = 3_600_000, base: Int64 = 1_800_000_000_000 / hour * hour
        try queue.write { db in
            try db.execute(sql: "INSERT INTO metricSeries (id, service, name, labels) VALUES (1, 's', 'a', 'a'), (2, 's', 'b', 'b')")
            for index in 0..<600 {
                let time = base + Int64(index) * 15_000
                try db.execute(sql: "INSERT INTO metricSample VALUES (?, ?, ?)", arguments: [1, time, index % 50 == 0 ? nil : Double(index)])
            }
            try db.execute(sql: "INSERT INTO metricSample VALUES (2, ?, 7)", arguments: [base - 1])
        }
        try RatchetDatabase.migrator.migrate(queue)
        try queue.read { db in
            #expect(try !db.tableExists("metricSample"))
            let rows = try Row.fetchAll(db, sql: "SELECT seriesId, start, end, samples FROM metricChunk ORDER BY seriesId, start")
            #expect(rows.map { [$0[0], $0[1], $0[2], $0[3]] as [Int64] } == [
                [1, base, base + hour - 15_000, 240], [1, base + hour, base + 2 * hour - 15_000, 240],
                [1, base + 2 * hour, base + 2 * hour + 119 * 15_000, 120], [2, base - hour, base - 1, 1]])
            let samples = try SampleChunk.read(db, series: 1, from: base + 15_000, to: base + hour + 30_000)
            #expect(samples.count == 242 && samples.first?.value == 1 && samples.last?.value == 242)
            #expect(try SampleChunk.read(db, series: 1, from: base, to: base + hour).filter { $0.value.isNaN }.count == 5)
        }
    }
}
