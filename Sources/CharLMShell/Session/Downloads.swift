// `load tinyshakespeare` and `load https://...`: downloads into a cache folder, checks built-in datasets against
// their published SHA-256, and reuses the cache afterwards.

import CharLM
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A dataset `load` knows by name.
public struct BuiltInDataset: Sendable {
    public let fileName: String
    public let url: String
    public let sha256: String
}

/// The download cache.
public struct Downloads: Sendable {
    /// `$CHARLM_CACHE`, else `~/.cache/charlm`.
    public var cacheFolder: String
    /// How long one download may take.
    public var timeout: TimeInterval = 60
    /// The largest body a download may have: what `load` could read from a file (the session sets it).
    public var maximumBytes = Int.max

    public init(cacheFolder: String? = nil) {
        let environment = ProcessInfo.processInfo.environment
        self.cacheFolder = cacheFolder ?? environment["CHARLM_CACHE"]
            ?? (homeFolder() as NSString).appendingPathComponent(".cache/charlm")
    }

    /// Built-in datasets by name. `CHARLM_TINYSHAKESPEARE_URL` overrides the address (tests use a local server).
    public static let builtIn: [String: BuiltInDataset] = [
        "tinyshakespeare": BuiltInDataset(
            fileName: "tinyshakespeare.txt",
            url: ProcessInfo.processInfo.environment["CHARLM_TINYSHAKESPEARE_URL"]
                ?? "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            sha256: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),
    ]

    /// The built-in dataset a missing file's name probably meant ("shakespeare", "tinyshakespear"), or nil.
    static func builtInMeant(by source: String) -> String? {
        guard !source.contains("/"), source.count >= 4 else { return nil }
        let word = source.lowercased()
        return builtIn.keys.sorted().first { $0.contains(word) } ?? nearest(to: word, among: builtIn.keys.sorted())
    }

    /// The file `load SOURCE` reads: a built-in dataset's or a URL's cached copy (downloaded the first time), else
    /// SOURCE itself as a path.
    public func localPath(for source: String, console: Console, cancellation: Cancellation = .never) throws -> String {
        if let dataset = Self.builtIn[source] {
            return try fetch(name: source, dataset: dataset, console: console, cancellation: cancellation)
        }
        if source.hasPrefix("http://") || source.hasPrefix("https://") {
            return try fetch(url: source, console: console, cancellation: cancellation)
        }
        return source
    }

    /// The cached copy of a built-in dataset, downloading and verifying it the first time.
    public func fetch(name: String, dataset: BuiltInDataset, console: Console, cancellation: Cancellation = .never) throws -> String {
        let path = (cacheFolder as NSString).appendingPathComponent(dataset.fileName)
        if let cached = try? readFileBytes(at: path), sha256Hex(cached) == dataset.sha256 {
            return path
        }
        console.note("downloading \(name) from \(dataset.url)\n")
        let bytes: [UInt8]
        do {
            bytes = try download(dataset.url, cancellation: cancellation)
        } catch let error as ShellError {
            throw ShellError.download("\(error.description). Offline? Put the file at \(path) (sha256 \(dataset.sha256)) and `load \(name)` again")
        }
        let digest = sha256Hex(bytes)
        guard digest == dataset.sha256 else {
            throw ShellError.download("the download of \(name) from \(dataset.url) has sha256 \(digest), not \(dataset.sha256); nothing was saved. Try again, or put the right file at \(path)")
        }
        try store(bytes, at: path)
        return path
    }

    /// The cached copy of any http(s) text, downloading it the first time.
    public func fetch(url: String, console: Console, cancellation: Cancellation = .never) throws -> String {
        guard let parsed = URL(string: url), parsed.host != nil else { throw ShellError.download("'\(url)' is not a valid URL") }
        let base = parsed.lastPathComponent.isEmpty || parsed.lastPathComponent == "/" ? "download" : parsed.lastPathComponent
        let path = (cacheFolder as NSString).appendingPathComponent("url-" + String(sha256Hex(Array(url.utf8)).prefix(12)) + "-" + base)
        if FileManager.default.fileExists(atPath: path) { return path }
        console.note("downloading \(url)\n")
        try store(try download(url, cancellation: cancellation), at: path)
        return path
    }

    private func store(_ bytes: [UInt8], at path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: cacheFolder, withIntermediateDirectories: true)
        } catch {
            throw ShellError.download("cannot create the cache folder '\(cacheFolder)': \(error.localizedDescription); set CHARLM_CACHE to a writable folder")
        }
        try writeFileAtomically(bytes, to: path)
    }

    /// The body of a successful GET, or an error saying why there is none. The body is taken as it arrives and
    /// the download stops as soon as it passes `maximumBytes` (a server's Content-Length over it stops it before
    /// anything is taken), so no answer can fill the memory. Ctrl-C (`cancellation`) stops a download under way.
    private func download(_ address: String, cancellation: Cancellation) throws -> [UInt8] {
        guard let url = URL(string: address) else { throw ShellError.download("'\(address)' is not a valid URL") }
        let receiver = BoundedReceiver(maximumBytes: maximumBytes)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        let session = URLSession(configuration: configuration, delegate: receiver, delegateQueue: nil)
        let task = session.dataTask(with: url)
        task.resume()
        // Wait in tenths of a second, so Ctrl-C is heard.
        let deadline = Date().addingTimeInterval(timeout + 5)
        while receiver.done.wait(timeout: .now() + 0.1) == .timedOut {
            do {
                try cancellation.check()
            } catch {
                session.invalidateAndCancel()
                throw error
            }
            if Date() > deadline {
                session.invalidateAndCancel()
                throw ShellError.download("could not download \(address): no answer within \(Int(timeout)) s")
            }
        }
        session.finishTasksAndInvalidate()
        let outcome = receiver.outcome()
        if let size = outcome.tooLarge {
            throw ShellError.download("the download of \(address) is over \(formatBytes(maximumBytes)) (\(size)), more than this "
                                      + "machine can load now; nothing was saved")
        }
        if let failure = outcome.failure { throw ShellError.download("could not download \(address): \(failure)") }
        guard outcome.status == 200 else {
            throw ShellError.download("could not download \(address): the server answered HTTP \(outcome.status)")
        }
        return outcome.body
    }
}

/// Takes a download's body as it arrives, at most `maximumBytes` of it; URLSession calls it on its own queue.
private final class BoundedReceiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let maximumBytes: Int
    /// Signalled once the transfer has ended, however, or was stopped for its size (a cancelled task is not
    /// always reported complete at once).
    let done = DispatchSemaphore(value: 0)
    private var finished = false
    private let lock = NSLock()
    private var body: [UInt8] = []
    private var status = 0
    private var failure: String?
    /// What was known of the size when the download was stopped for it ("5 GB announced", "more than ...").
    private var tooLarge: String?

    init(maximumBytes: Int) { self.maximumBytes = maximumBytes }

    func outcome() -> (body: [UInt8], status: Int, failure: String?, tooLarge: String?) {
        lock.withLock { (body, status, failure, tooLarge) }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        let announced = response.expectedContentLength
        lock.withLock {
            status = (response as? HTTPURLResponse)?.statusCode ?? 0
            if announced > Int64(maximumBytes) { tooLarge = "\(formatBytes(Int(clamping: announced))) announced" }
        }
        completionHandler(announced > Int64(maximumBytes) ? .cancel : .allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let over = lock.withLock { () -> Bool in
            guard tooLarge == nil else { return true }
            guard body.count + data.count <= maximumBytes else {
                tooLarge = "more than that arrived"
                body = []
                return true
            }
            body.append(contentsOf: data)
            return false
        }
        if over {
            dataTask.cancel()
            finish()
        }
    }

    private func finish() {
        let first = lock.withLock { () -> Bool in
            defer { finished = true }
            return !finished
        }
        if first { done.signal() }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.withLock {
            if tooLarge == nil { failure = error.map(describeNetworkError) }
        }
        finish()
    }
}

/// SHA-256 (FIPS 180-4) of `bytes`, as 64 lowercase hex digits.
public func sha256Hex(_ bytes: [UInt8]) -> String {
    let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]
    var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    var message = bytes
    let bitLength = UInt64(bytes.count) * 8
    message.append(0x80)
    while message.count % 64 != 56 { message.append(0) }
    for shift in stride(from: 56, through: 0, by: -8) { message.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
    @inline(__always) func rotateRight(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
    var w = [UInt32](repeating: 0, count: 64)
    for chunk in stride(from: 0, to: message.count, by: 64) {
        for i in 0..<16 {
            let j = chunk + 4 * i
            w[i] = UInt32(message[j]) << 24 | UInt32(message[j + 1]) << 16 | UInt32(message[j + 2]) << 8 | UInt32(message[j + 3])
        }
        for i in 16..<64 {
            let s0 = rotateRight(w[i - 15], 7) ^ rotateRight(w[i - 15], 18) ^ (w[i - 15] >> 3)
            let s1 = rotateRight(w[i - 2], 17) ^ rotateRight(w[i - 2], 19) ^ (w[i - 2] >> 10)
            w[i] = w[i - 16] &+ s0 &+ w[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, hh) = (h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7])
        for i in 0..<64 {
            let s1 = rotateRight(e, 6) ^ rotateRight(e, 11) ^ rotateRight(e, 25)
            let choice = (e & f) ^ (~e & g)
            let t1 = hh &+ s1 &+ choice &+ k[i] &+ w[i]
            let s0 = rotateRight(a, 2) ^ rotateRight(a, 13) ^ rotateRight(a, 22)
            let majority = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ majority
            (hh, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        h = [h[0] &+ a, h[1] &+ b, h[2] &+ c, h[3] &+ d, h[4] &+ e, h[5] &+ f, h[6] &+ g, h[7] &+ hh]
    }
    return h.map { word in
        let digits = String(word, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }.joined()
}

/// A network failure in words a user can act on (Foundation's own text for some is "NSURLErrorDomain error -1000").
private func describeNetworkError(_ error: Error) -> String {
    guard let error = error as? URLError else { return error.localizedDescription }
    switch error.code {
    case .badURL, .unsupportedURL: return "the address is not one charlm can fetch (http or https, with a host name or address)"
    case .cannotConnectToHost: return "nothing answered there (connection refused)"
    case .cannotFindHost, .dnsLookupFailed: return "the host name was not found"
    case .notConnectedToInternet, .networkConnectionLost: return "there is no network connection"
    case .timedOut: return "no answer in time"
    case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
         .serverCertificateHasUnknownRoot:
        return "the secure connection failed (certificate or TLS problem)"
    default: return "the transfer failed (network error \(error.code.rawValue))"
    }
}
