// The time loops' own matrix product (PackedProduct.swift) against the naive triple loop, and the thread team that
// runs the loops (ThreadTeam.swift): shares, barriers, and the model's passes on teams of one, two and three threads
// against the naive per-gate reference.

@testable import CharLM
import Foundation
import Testing

private func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    return (0..<count).map { _ in generator.nextFloat(in: -1, 1) }
}

// M around the kernel's 6 rows (1, 3, 5, 6, 7, 16, 64: the last block of 1 to 4 rows takes the four-row kernel)
// and N around its 64- or 16-column panels (37, 64, 100, 130), for every kernel whatever this CPU prefers (the wide
// one runs, slowly, on AVX2 too; the avx2 one's 256-bit vectors run on any x86 CPU).
@Test(arguments: [(M: 1, K: 5, N: 37), (M: 5, K: 16, N: 64), (M: 6, K: 9, N: 100), (M: 7, K: 33, N: 130),
                  (M: 64, K: 40, N: 64), (M: 13, K: 128, N: 70), (M: 3, K: 7, N: 64), (M: 16, K: 50, N: 128)],
      PackedKernel.allCases.flatMap { kernel in [false, true].map { (kernel: kernel, transposed: $0) } })
func packedProductMatchesNaiveTripleLoop(
    shape: (M: Int, K: Int, N: Int), variant: (kernel: PackedKernel, transposed: Bool)
) {
    let transposed = variant.transposed
    let (M, K, N) = shape
    let (lda, ldc) = (K + 3, N + 5)  // strided rows, as the LSTM's (B, 4H) blocks are read with their own strides
    let a = randomFloats(M * lda, seed: 1)
    // W (K, N), given as stored or as its transpose (N, K).
    let w = randomFloats(K * N, seed: 2)
    let source = transposed ? (0..<(N * K)).map { index in w[(index % K) * N + index / K] } : w
    let start = randomFloats(M * ldc, seed: 3)
    let packed = PackedMatrix(rows: K, columns: N, kernel: variant.kernel)
    source.withUnsafeBufferPointer { packed.pack($0.baseAddress!, transposed: transposed, panels: 0..<packed.panelCount) }
    for accumulate in [true, false] {
        var c = start
        a.withUnsafeBufferPointer { aBuffer in
            c.withUnsafeMutableBufferPointer { cBuffer in
                packed.multiply(aBuffer.baseAddress!, lda: lda, rows: M, panels: 0..<packed.panelCount,
                                into: cBuffer.baseAddress!, ldc: ldc, accumulate: accumulate)
            }
        }
        let expected = naiveGemm(
            transA: false, transB: false, m: M, n: N, k: K, alpha: 1, a: a, lda: lda, b: w, ldb: N,
            beta: accumulate ? 1 : 0, c: start, ldc: ldc)
        var worst = 0.0
        for i in 0..<M {
            for j in 0..<ldc {
                let index = i * ldc + j
                // Columns past N belong to the caller: untouched.
                let want = j < N ? expected[index] : Double(start[index])
                worst = max(worst, abs(Double(c[index]) - want))
            }
        }
        // Float32 sums of up to 128 products of magnitude < 1: a few 1e-6.
        #expect(worst < 1e-4, "\(variant) M \(M) K \(K) N \(N) accumulate \(accumulate): \(worst)")
    }
}

@Test(arguments: PackedKernel.allCases)
func packedProductTouchesOnlyTheColumnsOfItsPanels(kernel: PackedKernel) {
    let (M, K, N) = (8, 12, 200)  // the last panel is 8 columns wide
    let a = randomFloats(M * K, seed: 4)
    let w = randomFloats(K * N, seed: 5)
    let packed = PackedMatrix(rows: K, columns: N, kernel: kernel)
    let columns = kernel.panelWidth..<(3 * kernel.panelWidth)
    w.withUnsafeBufferPointer { packed.pack($0.baseAddress!, transposed: false, panels: 1..<3) }
    var c = [Float](repeating: 7, count: M * N)
    a.withUnsafeBufferPointer { aBuffer in
        c.withUnsafeMutableBufferPointer { cBuffer in
            packed.multiply(aBuffer.baseAddress!, lda: K, rows: M, panels: 1..<3, into: cBuffer.baseAddress!, ldc: N,
                            accumulate: false)
        }
    }
    let expected = naiveGemm(transA: false, transB: false, m: M, n: N, k: K, alpha: 1, a: a, lda: K, b: w, ldb: N,
                             beta: 0, c: c, ldc: N)
    for i in 0..<M {
        for j in 0..<N {
            if columns.contains(j) {
                #expect(abs(Double(c[i * N + j]) - expected[i * N + j]) < 1e-4)
            } else {
                #expect(c[i * N + j] == 7, "row \(i) column \(j) changed")
            }
        }
    }
}

// The kernels add each element's products in the same order, so they agree bit for bit: which kernel a CPU class
// takes changes no result of the time loops.
@Test func packedKernelsGiveIdenticalResults() {
    let (M, K, N) = (13, 100, 150)
    let a = randomFloats(M * K, seed: 6)
    let w = randomFloats(K * N, seed: 7)
    let start = randomFloats(M * N, seed: 8)
    let results = PackedKernel.allCases.map { kernel in
        let packed = PackedMatrix(rows: K, columns: N, kernel: kernel)
        w.withUnsafeBufferPointer { packed.pack($0.baseAddress!, transposed: false, panels: 0..<packed.panelCount) }
        var c = start
        a.withUnsafeBufferPointer { aBuffer in
            c.withUnsafeMutableBufferPointer { cBuffer in
                packed.multiply(aBuffer.baseAddress!, lda: K, rows: M, panels: 0..<packed.panelCount,
                                into: cBuffer.baseAddress!, ldc: N, accumulate: true)
            }
        }
        return c
    }
    for (kernel, result) in zip(PackedKernel.allCases, results) { #expect(result == results[0], "\(kernel)") }
}

@Test(arguments: [1, 2, 3, 5])
func teamSharesTileTheRangeAndBarriersOrderTheSteps(size: Int) {
    let team = ThreadTeam(size: size)
    defer { team.shutDown() }
    // Shares: disjoint, in order, covering 0..<count, for counts below and above the team size.
    for count in [0, 1, 2, 3, 4, 7, 64] {
        var covered: [Int] = []
        for index in 0..<size { covered += Array(TeamMember(index: index, team: team).share(of: count)) }
        #expect(covered == Array(0..<count), "count \(count)")
    }
    // Barriers: in round r every member writes its slot, then (after a barrier) reads every other slot, which must
    // hold round r; a second barrier keeps the next round's writes from overtaking those reads.
    let rounds = 2_000
    let slots = UnsafeMutablePointer<Int>.allocate(capacity: size)
    slots.initialize(repeating: -1, count: size)
    defer { slots.deallocate() }
    let mismatches = UnsafeMutablePointer<Int>.allocate(capacity: size)
    mismatches.initialize(repeating: 0, count: size)
    defer { mismatches.deallocate() }
    team.run { member in
        for round in 0..<rounds {
            slots[member.index] = round
            member.barrier()
            for other in 0..<size where slots[other] != round { mismatches[member.index] += 1 }
            member.barrier()
        }
    }
    #expect((0..<size).map { mismatches[$0] } == Array(repeating: 0, count: size))
    #expect((0..<size).map { slots[$0] } == Array(repeating: rounds - 1, count: size))
}

/// Runs `body` while another thread holds `team` busy with a job (waiting at a barrier until `body` returns). That
/// job runs on the team itself only when the team is not running alone after a late member (see below), which a
/// busy machine can cause at any moment: so it is tried again after each such while, until it holds the team.
private func whileBusy(_ team: ThreadTeam, _ body: () -> Void) {
    final class Holding: @unchecked Sendable { var team = false }
    while true {
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let holding = Holding()
        let outer = Thread {
            team.run { member in
                if member.index == 0 { holding.team = member.team === team; started.signal(); release.wait() }
                member.barrier()
            }
            finished.signal()
        }
        outer.start()
        started.wait()
        if holding.team { body() }
        release.signal()
        finished.wait()
        if holding.team { return }
        usleep(UInt32(ThreadTeam.longestAlone / 1000) + 20_000)
    }
}

@Test func aBusyTeamRunsAnotherCallersPartsOneAfterAnother() {
    let team = ThreadTeam(size: 3)
    defer { team.shutDown() }
    // The same three parts as on an idle team, all on this thread, in order.
    var parts: [Int] = []
    whileBusy(team) { team.runParts(work: 1 << 20) { member in parts.append(member.index) } }
    #expect(parts == [0, 1, 2])
}

@Test func aBusyTeamRunsAnotherCallersJobAlone() {
    let team = ThreadTeam(size: 2)
    defer { team.shutDown() }
    // The team is busy: this job runs on the calling thread alone, as member 0 of a team of one.
    var sizes: [Int] = []
    whileBusy(team) { team.run { member in sizes.append(member.team.size) } }
    #expect(sizes == [1])
}

/// Processor time the thread whose clock is `clock` (`pthread_getcpuclockid`) has used, in nanoseconds.
private func processorNanoseconds(_ clock: clockid_t) -> UInt64 {
    var time = timespec()
    clock_gettime(clock, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// A member that keeps the others waiting (its thread lost its core) makes the team run its next jobs on the caller
/// alone: `run` as a team of one, `runParts` part after part on the caller, so the results are those of the team.
@Test func aLateMemberMakesTheTeamRunAloneForAWhile() {
    // every stretch alone as long as the longest, so that a try fits in one on a busy machine
    let team = ThreadTeam(size: 2, shortestAlone: ThreadTeam.longestAlone)
    defer { team.shutDown() }
    let caller = Thread.current
    /// The team size each member of a job saw: [2, 2] on the team, [1] alone.
    func sizesOfAJob() -> [Int] {
        var sizes: [Int] = []
        let lock = NSLock()
        team.run { member in lock.withLock { sizes.append(member.team.size) } }
        return sizes
    }
    /// Whether a job runs on the team again after the stretch alone. On a busy machine a worker that loses its core
    /// while it watches for a job starts another while alone (as it should), so each while is waited out in turn.
    func sharesAgain() -> Bool {
        let deadline = Date().addingTimeInterval(300)
        repeat {
            usleep(UInt32(ThreadTeam.longestAlone / 1000) + 20_000)
            if sizesOfAJob() == [2, 2] { return true }
        } while Date() < deadline
        return false
    }
    // A try counts when its late job ran on the team and all of it took less than the stretch alone (a busy
    // machine can keep this thread off its core longer than that between two lines).
    var tried = false
    let deadline = Date().addingTimeInterval(300)
    while !tried && Date() < deadline {
        #expect(sharesAgain(), "after the stretch alone, the team again")
        let start = DispatchTime.now().uptimeNanoseconds
        // member 1 keeps the caller waiting far longer than `lateNanoseconds`: until the caller has spent 2 ms of
        // its own processor time waiting. (A sleep of so many milliseconds would not do: on a busy machine the
        // caller can be off its core for all of it, and a wait it never saw marks no one late.)
        var lateMemberRan = false
        let callerWaits = DispatchSemaphore(value: 0)
        var callerClock = clockid_t(), callerStart: UInt64 = 0
        team.run { member in
            if member.index == 0 {
                pthread_getcpuclockid(pthread_self(), &callerClock)
                callerStart = processorNanoseconds(callerClock)
                callerWaits.signal()
            } else {
                callerWaits.wait()
                while processorNanoseconds(callerClock) - callerStart < 2_000_000 { usleep(200) }
                lateMemberRan = true
            }
        }
        let sizes = sizesOfAJob()
        var parts: [(Int, Bool)] = []
        team.runParts(work: 1 << 20) { member in parts.append((member.index, Thread.current == caller)) }
        guard lateMemberRan && DispatchTime.now().uptimeNanoseconds - start < ThreadTeam.longestAlone else { continue }
        tried = true
        #expect(sizes == [1])
        #expect(parts.map(\.0) == [0, 1] && parts.allSatisfy(\.1), "every part on the caller, in order")
    }
    #expect(tried, "no try fitted in the stretch alone within 300 s")
    // and after the stretch alone, the team again
    #expect(sharesAgain())
}

/// Forward (training mode: dropout drawn from seed 1), loss and backward of `model` on a fresh workspace run on
/// `context`: logits and gradients. TimeLoopTests uses it too.
func pass(_ model: RecurrentModel, inputs: [[Int]], targets: [[Int]], context: ComputeContext) -> ([Float], [Float]) {
    let (B, T) = (inputs.count, inputs[0].count)
    let workspace = model.makeWorkspace(length: T, batch: B, context: context)
    load(inputs, into: workspace.inputs)
    load(targets, into: workspace.targets)
    var generator = SeededGenerator(seed: 1)
    model.forward(length: T, batch: B, workspace: workspace, mode: .training, generator: &generator)
    let logits = workspace.logits.array
    _ = model.loss(length: T, batch: B, workspace: workspace, gradient: true)
    model.gradients.zero()
    model.backward(length: T, batch: B, workspace: workspace)
    return (Array(logits.prefix(T * B * model.config.vocabularySize)), model.gradients.array)
}

// B 7 and 13 take the packed kernel forward (one full block of six rows and an edge); H 37 gives 4H = 148, two full
// panels and a partial one forward, one partial panel backward; H 70 two panels backward. Teams of 2 and 3 split
// panels and rows unevenly (and leave a member without panels).
@Test(arguments: [(V: 9, E: 5, H: 37, L: 2, T: 4, B: 7), (V: 6, E: 4, H: 70, L: 2, T: 3, B: 13)], [1, 2, 3])
func passesOnAnyTeamMatchTheNaiveModel(shape: (V: Int, E: Int, H: Int, L: Int, T: Int, B: Int), teamSize: Int) throws {
    let model = try makeModel(V: shape.V, E: shape.E, H: shape.H, L: shape.L, seed: 8)
    let inputs = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: 9)
    let targets = randomSequences(B: shape.B, T: shape.T, V: shape.V, seed: 10)
    // The products are cut the same way in every pass (as the machine's context cuts them): see below.
    let (logits, gradients) = pass(model, inputs: inputs, targets: targets,
                                   context: ComputeContext(threads: teamSize, productsAs: .machine))
    // Forward against the naive per-gate model.
    let reference = NaiveModel(model: model).run(inputs: inputs)
    var worst = 0.0
    for t in 0..<shape.T {
        for b in 0..<shape.B {
            for v in 0..<shape.V {
                worst = max(worst, abs(Double(logits[(t * shape.B + b) * shape.V + v]) - reference.logits[b][t][v]))
            }
        }
    }
    #expect(worst < 1e-5, "logits: largest difference \(worst)")
    // Backward against a pass whose time loops run on one thread (ModelTests checks those gradients against finite
    // differences). Each thread sums its elements in the same order whatever its share, and the BLAS products are cut
    // the same way in both passes (BLAS.swift), so the gradients agree to the bit.
    let (_, soloGradients) = pass(model, inputs: inputs, targets: targets,
                                  context: ComputeContext(threads: 1, productsAs: .machine))
    #expect(gradients == soloGradients)
}

@Test func stretchesAloneDoubleWhileTheTeamIsLateAgainAndStartShortAfterAGoodRun() {
    let (first, longest, ms) = (ThreadTeam.shortestAlone, ThreadTeam.longestAlone, UInt64(1_000_000))
    func stretch(at now: UInt64, lastUntil: UInt64, last: UInt64) -> UInt64 {
        ThreadTeam.stretchAlone(now: now, lastUntil: lastUntil, last: last, first: first)
    }
    // the first late member: the shortest stretch; a team measured slower than its caller: a longer first one
    #expect(stretch(at: 1000 * ms, lastUntil: 0, last: 0) == first)
    #expect(ThreadTeam.stretchAlone(now: 1000 * ms, lastUntil: 0, last: 0, first: ThreadTeam.slowTeamAlone)
            == ThreadTeam.slowTeamAlone)
    // late again 10 ms after a 5 ms stretch ended (within 20 ms): twice as long; and so on up to the longest
    #expect(stretch(at: 1015 * ms, lastUntil: 1005 * ms, last: 5 * ms) == 10 * ms)
    #expect(stretch(at: 1100 * ms, lastUntil: 1080 * ms, last: 80 * ms) == 160 * ms)
    #expect(stretch(at: 1300 * ms, lastUntil: 1260 * ms, last: 160 * ms) == longest)
    #expect(stretch(at: 1600 * ms, lastUntil: 1500 * ms, last: longest) == longest)
    // late during a stretch (a worker that lost its core while it watched for a job): longer too
    #expect(stretch(at: 1000 * ms, lastUntil: 1003 * ms, last: 5 * ms) == 10 * ms)
    // a good run as long as the last stretch (20 ms at least) since it ended: the shortest again
    #expect(stretch(at: 1030 * ms, lastUntil: 1005 * ms, last: 5 * ms) == first)
    #expect(stretch(at: 1800 * ms, lastUntil: 1500 * ms, last: longest) == first)
}

/// Keeps the thread busy for `microseconds` of wall time (a member's part of a job, without sleeping).
private func spin(microseconds: UInt64) {
    let end = DispatchTime.now().uptimeNanoseconds + microseconds * 1_000
    while DispatchTime.now().uptimeNanoseconds < end {}
}

/// A worker whose part takes a few milliseconds longer than the caller's, but less than twice as long, is late by
/// more than `lateNanoseconds` and still worth having: the team goes on as a team.
@Test func aWorkerSlowerByLessThanTheCallersOwnPartKeepsTheTeam() {
    let team = ThreadTeam(size: 2)
    defer { team.shutDown() }
    // On a busy machine the worker may lose its core for longer than the caller's part (rightly marked late), so
    // this tries up to 50 times for one clean run: the caller 20 ms, the worker 26 ms, then a job on the team.
    var kept = false
    for _ in 0..<50 where !kept {
        usleep(UInt32(ThreadTeam.longestAlone / 1000) + 20_000)  // out of any stretch alone
        var sizes: [Int] = []
        let lock = NSLock()
        team.run { member in spin(microseconds: member.index == 0 ? 20_000 : 26_000) }
        team.run { member in lock.withLock { sizes.append(member.team.size) } }
        kept = sizes == [2, 2]
    }
    #expect(kept, "a worker 6 ms slower than the caller's 20 ms made the team run alone every time")
}

// The team is judged on 2 ms of its counted jobs, not job by job: one long wait among healthy jobs (a worker woken
// from its sleep, a core taken by the host once) does not make it slow; waits longer than the caller's work, job
// after job, do, as soon as the window is full.
@Test func slowTeamIsJudgedOnAWindowOfJobs() {
    var window = SlowTeamWindow()
    // generation's steps on 2 threads: the caller works 20 us and waits 2 us, but one step waits 60 us
    var verdicts: [Bool] = []
    for step in 0..<200 {
        if let verdict = window.add(waited: step == 3 ? 60_000 : 2_000, worked: 20_000, teamSize: 2) {
            verdicts.append(verdict)
        }
    }
    #expect(verdicts == [false, false], "a healthy team judged \(verdicts)")
    // a worker twice as slow as the caller: every step waits 25 us for 20 of work
    var slow = SlowTeamWindow()
    var steps = 0
    var verdict: Bool?
    while verdict == nil {
        steps += 1
        verdict = slow.add(waited: 25_000, worked: 20_000, teamSize: 2)
    }
    #expect(verdict == true)
    #expect(steps == 45, "judged after \(steps) steps of 45 us (2 ms)")
    // on 3 threads the caller alone would do three shares: waits up to twice its work are still faster
    var three = SlowTeamWindow()
    #expect(three.add(waited: 1_300_000, worked: 700_000, teamSize: 3) == false)
    #expect(three.add(waited: 1_500_000, worked: 700_000, teamSize: 3) == true)
}

/// A team whose members meet often and whose worker is much slower than the caller (no single wait long: a worker
/// whose core is given less time) is slower than the caller alone: within a few such jobs, jobs run alone.
@Test func aTeamSlowerThanItsCallerAloneRunsAlone() {
    let team = ThreadTeam(size: 2)
    defer { team.shutDown() }
    // Five tries; other signs (a member that lost its core) can make a try go alone too, so most must, not one.
    var wentAlone = 0
    for _ in 0..<5 {
        usleep(UInt32(ThreadTeam.longestAlone / 1000) + 20_000)  // out of any stretch alone
        // eight jobs of five phases: the caller works 20 us a phase, the worker 300 us (each wait under 1 ms)
        for _ in 0..<8 {
            team.run { member in
                for _ in 0..<5 {
                    spin(microseconds: member.index == 0 ? 20 : 300)
                    member.barrier()
                }
            }
        }
        var sizes: [Int] = []
        let lock = NSLock()
        team.run { member in lock.withLock { sizes.append(member.team.size) } }
        if sizes == [1] { wentAlone += 1 }
    }
    #expect(wentAlone >= 4, "jobs went on as a team slower than the caller alone in \(5 - wentAlone) of 5 tries")
}
