import Foundation
import GRDB

/// The samples of one series over one chunk span, encoded as Prometheus's XOR chunks are
/// (Gorilla, Pelkonen et al. 2015; adr/0062): a 32-bit count, the first time and
/// value in 64 bits each, then per sample the delta-of-delta of its time in a variable bit
/// width ('0' for the same interval, '10'+14, '110'+17, '1110'+20, '1111'+64 bits) and its
/// value XORed with the previous one ('0' for the same value, '10' + the bits inside the
/// previous window of meaningful bits, '11' + 5 bits of leading zeros + 6 bits of length + the
/// bits). NaN and ±Inf are values like any other (their bit patterns are kept).
public enum SampleChunk {
    /// What a stored chunk decodes to, time order.
    public typealias Samples = [(time: Int64, value: Double)]

    /// Encodes samples in strictly increasing time order.
    public static func encode(_ samples: Samples) -> Data {
        var writer = BitWriter()
        writer.write(UInt64(samples.count), bits: 32)
        guard let first = samples.first else { return Data(writer.bytes) }
        writer.write(UInt64(bitPattern: first.time), bits: 64)
        writer.write(first.value.bitPattern, bits: 64)
        var previousTime = first.time, previousDelta: Int64 = 0
        var previousBits = first.value.bitPattern, window: (leading: Int, trailing: Int)? = nil
        for sample in samples.dropFirst() {
            let delta = sample.time &- previousTime
            writeDeltaOfDelta(&writer, delta &- previousDelta)
            previousTime = sample.time
            previousDelta = delta
            writeXOR(&writer, sample.value.bitPattern ^ previousBits, window: &window)
            previousBits = sample.value.bitPattern
        }
        return Data(writer.bytes)
    }

    /// Decodes a chunk written by `encode`; throws when it is cut short.
    public static func decode(_ data: Data) throws -> Samples {
        var reader = BitReader(bytes: [UInt8](data))
        let count = Int(try reader.read(32))
        guard count > 0 else { return [] }
        var samples: Samples = []
        samples.reserveCapacity(count)
        var time = Int64(bitPattern: try reader.read(64)), bits = try reader.read(64)
        samples.append((time, Double(bitPattern: bits)))
        var delta: Int64 = 0, window = (leading: 0, trailing: 0)
        for _ in 1..<count {
            delta = delta &+ (try readDeltaOfDelta(&reader))
            time = time &+ delta
            if try reader.read(1) == 1 {
                if try reader.read(1) == 1 {
                    let leading = Int(try reader.read(5)), length = Int(try reader.read(6))
                    window = (leading, 64 - leading - (length == 0 ? 64 : length))
                }
                let length = 64 - window.leading - window.trailing
                bits ^= (try reader.read(length)) << UInt64(window.trailing)
            }
            samples.append((time, Double(bitPattern: bits)))
        }
        return samples
    }

    /// Widths of the delta-of-delta buckets after their prefixes '10', '110', '1110'.
    private static let widths = [14, 17, 20]

    private static func writeDeltaOfDelta(_ writer: inout BitWriter, _ value: Int64) {
        guard value != 0 else { writer.write(0, bits: 1); return }
        for (index, width) in widths.enumerated() where value >= -(1 << (width - 1)) && value < (1 << (width - 1)) {
            writer.write((1 << UInt64(index + 2)) - 2, bits: index + 2)   // 10, 110, 1110
            writer.write(UInt64(bitPattern: value) & ((1 << UInt64(width)) - 1), bits: width)
            return
        }
        writer.write(0b1111, bits: 4)
        writer.write(UInt64(bitPattern: value), bits: 64)
    }

    private static func readDeltaOfDelta(_ reader: inout BitReader) throws -> Int64 {
        var ones = 0
        while ones < 4, try reader.read(1) == 1 { ones += 1 }
        guard ones > 0 else { return 0 }
        guard ones < 4 else { return Int64(bitPattern: try reader.read(64)) }
        let width = widths[ones - 1], raw = try reader.read(width)
        let shift = UInt64(64 - width)
        return Int64(bitPattern: raw << shift) >> Int64(shift)   // sign-extended
    }

    private static func writeXOR(_ writer: inout BitWriter, _ xor: UInt64, window: inout (leading: Int, trailing: Int)?) {
        guard xor != 0 else { writer.write(0, bits: 1); return }
        let leading = min(31, xor.leadingZeroBitCount), trailing = xor.trailingZeroBitCount
        if let current = window, leading >= current.leading, trailing >= current.trailing {
            writer.write(0b10, bits: 2)
            writer.write(xor >> UInt64(current.trailing), bits: 64 - current.leading - current.trailing)
            return
        }
        window = (leading, trailing)
        let length = 64 - leading - trailing
        writer.write(0b11, bits: 2)
        writer.write(UInt64(leading), bits: 5)
        writer.write(UInt64(length & 63), bits: 6)   // 64 is written as 0
        writer.write(xor >> UInt64(trailing), bits: length)
    }
}

/// Bits appended most significant first.
struct BitWriter {
    private(set) var bytes: [UInt8] = []
    private var free = 0

    /// Appends the lowest `bits` bits of `value` (0…64).
    mutating func write(_ value: UInt64, bits: Int) {
        var remaining = bits
        while remaining > 0 {
            if free == 0 { bytes.append(0); free = 8 }
            let take = Swift.min(free, remaining)
            let part = (value >> UInt64(remaining - take)) & ((1 << UInt64(take)) - 1)
            bytes[bytes.count - 1] |= UInt8(part) << UInt8(free - take)
            free -= take
            remaining -= take
        }
    }
}

/// Bits read most significant first.
struct BitReader {
    let bytes: [UInt8]
    private var position = 0
    init(bytes: [UInt8]) { self.bytes = bytes }

    /// The next `bits` bits (0…64) as the low bits of the result.
    mutating func read(_ bits: Int) throws -> UInt64 {
        guard position + bits <= bytes.count * 8 else { throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: "a metrics chunk is cut short") }
        var value: UInt64 = 0, remaining = bits
        while remaining > 0 {
            let offset = position & 7, available = 8 - offset, take = Swift.min(available, remaining)
            let part = (UInt64(bytes[position >> 3]) >> UInt64(available - take)) & ((1 << UInt64(take)) - 1)
            value = (value << UInt64(take)) | part
            position += take
            remaining -= take
        }
        return value
    }
}

extension SampleChunk {
    /// The time a chunk covers, milliseconds: each holds one series' samples of one hour, aligned.
    public static let span: Int64 = 3_600_000

    /// The start of the chunk holding `time`.
    public static func start(of time: Int64) -> Int64 { time - ((time % span) + span) % span }

    /// Time-ordered samples cut at chunk boundaries, each part with its chunk's start.
    public static func split(_ samples: Samples) -> [(start: Int64, samples: Samples)] {
        var parts: [(start: Int64, samples: Samples)] = []
        for sample in samples {
            let start = start(of: sample.time)
            if parts.last?.start == start { parts[parts.count - 1].samples.append(sample) } else { parts.append((start, [sample])) }
        }
        return parts
    }

    /// Writes (or replaces) the chunk of `series` starting at `start` (migration `v13-metrics-chunks`).
    public static func write(_ db: Database, series: Int64, start: Int64, _ samples: Samples) throws {
        guard let last = samples.last else {
            try db.execute(sql: "DELETE FROM metricChunk WHERE seriesId = ? AND start = ?", arguments: [series, start])
            return
        }
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO metricChunk (seriesId, start, end, samples, data) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [series, start, last.time, samples.count, encode(samples)])
    }

    /// The samples of `series` with times in `from...to`, in time order.
    public static func read(_ db: Database, series: Int64, from: Int64, to: Int64) throws -> Samples {
        guard from <= to else { return [] }
        let rows = try Row.fetchCursor(db.cachedStatement(sql: """
            SELECT data FROM metricChunk WHERE seriesId = ? AND start BETWEEN ? AND ? AND end >= ? ORDER BY start
            """), arguments: [series, start(of: from), to, from])
        var out: Samples = []
        while let row = try rows.next() {
            let samples = try decode(row[0])
            out += samples.filter { $0.time >= from && $0.time <= to }
        }
        return out
    }
}
