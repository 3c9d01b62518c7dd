// The demo's report as a browser shows it: headless Chromium (scripts/install-chromium.sh; the test is
// skipped when no Chromium is installed) loads a report built from a toy demo run, reports the size of
// every chart (a copy of the page with a measuring script appended, read back with --dump-dom), and
// takes a screenshot, which must not be blank.
import AlignKitAlignment
import AlignKitTestSupport
import AlignKitText
import Foundation
import Testing

/// The first Chromium on PATH.
let chromium: String? = ["chromium", "chromium-browser", "google-chrome"].lazy.compactMap { name -> String? in
    let paths = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
    return paths.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}.first

@Suite("Report rendering", .serialized, .enabled(if: chromium != nil, "Chromium is not installed (scripts/install-chromium.sh)"))
struct ReportRenderingTests {
    /// Runs Chromium headless with `arguments`; returns standard output.
    func runChromium(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium!)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test func chartsHaveSizeAndTheScreenshotIsNotBlank() throws {
        let folder = try temporaryFolder("report")
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(try AlignmentDemo(options: DemoTests.tiny, folder: folder).run())
        let report = try DemoReport.write(folder: folder)
        // Measure every <svg> once the page has laid out (the markers are split in the script so that its
        // own text does not match them).
        var html = try String(contentsOf: report, encoding: .utf8)
        html = html.replacingOccurrences(of: "</body>", with: """
            <script>const s = [...document.querySelectorAll('svg')].map(e => { const r = e.getBoundingClientRect(); return r.width + 'x' + r.height; });
            const p = document.createElement('pre'); p.id = 'sizes'; p.textContent = 'SI' + 'ZES ' + s.join(' ') + ' E' + 'ND'; document.body.appendChild(p);</script></body>
            """)
        let measured = folder.appendingPathComponent("measured.html")
        try html.write(to: measured, atomically: true, encoding: .utf8)
        let dom = try runChromium(["--dump-dom", measured.absoluteString])
        let sizes = try #require(dom.range(of: "SIZES ").flatMap { start in dom.range(of: " END", range: start.upperBound..<dom.endIndex).map { dom[start.upperBound..<$0.lowerBound] } })
        let charts = sizes.split(separator: " ").map { $0.split(separator: "x").compactMap { Double($0) } }
        #expect(charts.count == 9, "\(sizes)")
        #expect(charts.allSatisfy { $0.count == 2 && $0[0] > 100 && $0[1] > 100 }, "\(sizes)")
        // The screenshot of the report itself.
        let shot = folder.appendingPathComponent("report.png")
        _ = try runChromium(["--screenshot=\(shot.path)", "--window-size=1100,1600", report.absoluteString])
        let image = try PNGImage(contentsOf: shot)
        #expect(image.width == 1100 && image.height == 1600)
        // Not blank: a real share of pixels is not background, and there is colour (the chart lines).
        #expect(image.shareOfPixels { $0.r < 200 || $0.g < 200 || $0.b < 200 } > 0.01)
        #expect(image.shareOfPixels { abs(Int($0.r) - Int($0.b)) > 60 } > 0.0005)
    }
}

/// Just enough of PNG to count pixels: 8-bit RGB or RGBA, not interlaced (what Chromium writes).
struct PNGImage {
    var width = 0, height = 0
    var pixels: [(r: UInt8, g: UInt8, b: UInt8)] = []

    init(contentsOf url: URL) throws {
        let bytes = [UInt8](try Data(contentsOf: url))
        struct Bad: Error { let what: String }
        guard bytes.count > 8, bytes[0..<8].elementsEqual([137, 80, 78, 71, 13, 10, 26, 10]) else { throw Bad(what: "not a PNG") }
        func u32(_ i: Int) -> Int { Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3]) }
        var position = 8, channels = 0, compressed: [UInt8] = []
        while position + 8 <= bytes.count {
            let length = u32(position), type = String(decoding: bytes[(position + 4)..<(position + 8)], as: UTF8.self)
            let data = Array(bytes[(position + 8)..<(position + 8 + length)])
            if type == "IHDR" {
                width = u32(position + 8); height = u32(position + 12)
                guard data[8] == 8, data[12] == 0 else { throw Bad(what: "bit depth \(data[8]), interlace \(data[12])") }
                switch data[9] { case 2: channels = 3; case 6: channels = 4; default: throw Bad(what: "colour type \(data[9])") }
            }
            if type == "IDAT" { compressed += data }
            position += 12 + length
        }
        var end = 0
        let raw = try Inflate.deflate(compressed, from: 2, end: &end)   // skip the zlib header
        let stride = width * channels
        var previous = [UInt8](repeating: 0, count: stride), row = previous
        pixels.reserveCapacity(width * height)
        for y in 0..<height {
            let start = y * (stride + 1), filter = raw[start]
            for i in 0..<stride {
                let x = raw[start + 1 + i]
                let a = i >= channels ? Int(row[i - channels]) : 0, b = Int(previous[i]), c = i >= channels ? Int(previous[i - channels]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                default:
                    let p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                    predicted = pa <= pb && pa <= pc ? a : pb <= pc ? b : c
                }
                row[i] = UInt8(truncatingIfNeeded: Int(x) + predicted)
            }
            for px in 0..<width { pixels.append((row[px * channels], row[px * channels + 1], row[px * channels + 2])) }
            previous = row
        }
    }

    func shareOfPixels(where predicate: ((r: UInt8, g: UInt8, b: UInt8)) -> Bool) -> Double {
        Double(pixels.reduce(0) { $0 + (predicate($1) ? 1 : 0) }) / Double(max(pixels.count, 1))
    }
}
