// The threads that run the recurrent layers' time loops: the calling thread plus `size - 1` workers, started once and
// reused. A `ComputeContext` (Compute.swift) owns one team.
//
// A time step is too short (a few hundred microseconds) for a thread pool that hands out tasks: instead the whole
// loop is one job that every member runs, each on its own share of the work (its panels of the packed weights, its
// rows of the batch), meeting at a spinning barrier twice per step. The same team shares the larger BLAS products
// (BLAS.swift), one job per product. After a job the workers spin for half a millisecond for the next one (while
// generating, products come every few tens of microseconds, faster than a sleeping thread wakes), then sleep on a
// semaphore.

import Foundation
import Synchronization

/// One thread's view of the team while it runs a job.
struct TeamMember {
    /// 0 for the calling thread, 1..<size for the workers.
    let index: Int
    let team: ThreadTeam

    /// This member's contiguous share of 0..<count (the shares tile 0..<count; some may be empty).
    func share(of count: Int) -> Range<Int> {
        let size = team.size
        return (index * count / size)..<((index + 1) * count / size)
    }

    /// Waits until every member has reached this barrier.
    func barrier() { team.barrier(byCaller: index == 0) }
}

/// A fixed group of threads that run jobs together. See the top of the file.
final class ThreadTeam: @unchecked Sendable {
    /// Threads that run each job, the caller included.
    let size: Int

    /// The job being run; written by `run` before the workers are woken, read by them after.
    private var job: ((TeamMember) -> Void)?
    private var quitting = false
    /// Whether a job is running.
    private let busy = Atomic<Bool>(false)
    /// Jobs below this much work (elements or multiply-adds) run on the caller alone: see `runParts`.
    static let minimumSharedWork = 1 << 16
    /// A team of one, for callers that find the team busy.
    static let solo = ThreadTeam(size: 1)
    /// Jobs started so far: workers watch it for the next one.
    private let jobsStarted = Atomic<Int>(0)
    /// How to wake each worker.
    private let alarms: [Alarm]
    /// Workers that have finished the current job.
    private let finished = Atomic<Int>(0)
    /// Members that have reached the current barrier, and how many barriers have opened so far.
    private let arrived = Atomic<Int>(0)
    private let barriersOpened = Atomic<Int>(0)
    /// Until when (uptime in nanoseconds) jobs run on the caller alone, because a member kept the others waiting
    /// (see `waitUntil`).
    private let aloneUntil = Atomic<UInt64>(0)

    /// A team of `size` threads (the caller and `size - 1` workers); `shortestAlone` is for tests (see `goAlone`).
    init(size: Int, shortestAlone: UInt64 = ThreadTeam.shortestAlone) {
        self.size = max(1, size)
        firstStretchAlone = shortestAlone
        alarms = (1..<self.size).map { _ in Alarm() }
        for index in 1..<self.size {
            let thread = Thread { [self] in workerLoop(index: index) }
            thread.name = "charlm-\(index)"
            thread.stackSize = 1 << 22
            thread.start()
        }
    }

    /// Runs `job` on every member at once and returns when all have finished. While another thread is running a
    /// job on this team (two models training at once, or tests running in parallel), runs it alone on the caller.
    func run(_ job: (TeamMember) -> Void) {
        if size == 1 { return job(TeamMember(index: 0, team: self)) }
        if runsAlone { return job(TeamMember(index: 0, team: Self.solo)) }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return job(TeamMember(index: 0, team: Self.solo))
        }
        defer { busy.store(false, ordering: .releasing) }
        runOnEveryMember(job)
    }

    /// Like `run`, for a job that never waits at a barrier (a product cut into independent parts). Below
    /// `minimumSharedWork` (elements or multiply-adds, roughly) the caller runs it whole, as the one member of a team
    /// of one: waking a thread would cost more than it saves. When the team is busy, the caller runs every member's
    /// part itself, one after another: the work is cut the same way either way, so the results are the same to the
    /// bit (BLAS may round a part differently from a whole).
    func runParts(work: Int, _ job: (TeamMember) -> Void) {
        if size == 1 || work < Self.minimumSharedWork { return job(TeamMember(index: 0, team: Self.solo)) }
        guard !runsAlone, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for index in 0..<size { job(TeamMember(index: index, team: self)) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        runOnEveryMember(job)
    }

    private func runOnEveryMember(_ job: (TeamMember) -> Void) {
        // Every 16th job, whether the caller lost its core during it (see `waitUntil`): reading the thread's processor
        // time costs a system call, too much for every job of generation's 20-microsecond steps. Every 4th job,
        // whether the team was slower than the caller alone: the wall clock, read around each of the caller's waits
        // (and around its own part of every job), costs about 30 ns.
        jobsTimed &+= 1
        let timed = jobsTimed % 16 == 0
        let wallStart = DispatchTime.now().uptimeNanoseconds
        let processorStart = timed ? threadProcessorNanoseconds() : 0
        callerWaited = 0
        countsCallerWaits = jobsTimed % 4 == 0
        withoutActuallyEscaping(job) { job in
            self.job = job
            finished.store(0, ordering: .relaxed)
            jobsStarted.wrappingAdd(1, ordering: .sequentiallyConsistent)
            for alarm in alarms where alarm.asleep.load(ordering: .sequentiallyConsistent) { alarm.semaphore.signal() }
            let started = DispatchTime.now().uptimeNanoseconds
            job(TeamMember(index: 0, team: self))
            // late: the workers took more than twice the caller's own part, longer than it alone would have taken
            let ownPart = DispatchTime.now().uptimeNanoseconds - started
            waitUntil(lateAfter: max(Self.lateNanoseconds, ownPart)) { finished.load(ordering: .acquiring) == size - 1 }
            self.job = nil
        }
        if countsCallerWaits || timed {
            let counted = countsCallerWaits
            countsCallerWaits = false
            let now = DispatchTime.now().uptimeNanoseconds
            let wall = now - wallStart
            let offCore = timed ? wall.subtractingReportingOverflow(threadProcessorNanoseconds() - processorStart)
                                : (partialValue: 0, overflow: true)
            // The team is slower than the caller alone when the caller waited at the barriers longer than the other
            // members' share of the work would take it: (size - 1) times its own share. No single wait need be long
            // for that: generation's steps meet at a barrier every few microseconds, and on a virtual machine whose
            // host gave the worker's core less time, 2 threads generated at 5,800-8,900 characters/s where 1 made
            // 13,400-15,200 (the transformer of nanoGPT's CPU recipe, `charlm-bench generate-speed`). The wait at a
            // job's end does not count: a product's rows split evenly still take one member twice as long as the
            // other when only the other has them in its cache, and counting it there made the transformer's
            // training run alone most of the time in some runs (16,600-26,000 tokens/s at the CPU recipe, 21,300-27,400
            // without; 1 thread about 15,000). That wait has its own rule (`lateAfter` above).
            //
            // The waits and the work are added up over the counted jobs of a `SlowTeamWindow` before the team is
            // judged: one job of generation's (20-40 microseconds) is too short a sample. Judged job by job, a
            // worker just woken from its sleep, or a single wait for the host, sent the LSTM's generation (H 256)
            // alone for most of a run: 20,000-25,000 characters/s on 2 threads as on 1, 39,000-41,000 with the
            // team (the same machine, one session).
            let slowTeam = counted && slowTeamWindow.add(waited: callerWaited, worked: wall - min(wall, callerWaited),
                                                          teamSize: size) == true
            if slowTeam {
                goAlone(now: now, first: Self.slowTeamAlone)
            } else if !offCore.overflow && offCore.partialValue > Self.lateNanoseconds {
                goAlone(now: now)
            }
        }
    }

    /// Whether the caller's waits in this job are being added up (every 4th job), and their total so far.
    private var countsCallerWaits = false
    private var callerWaited: UInt64 = 0
    /// The counted jobs' waits at barriers and the caller's own work, since the team was last judged.
    private var slowTeamWindow = SlowTeamWindow()
    /// The first stretch alone after a slow team: longer than after one late member, as the team was measured slower
    /// than the caller alone. The transformer's generation above, 7 runs of 630 characters each: 5 ms made
    /// 12,400-20,300 characters/s (median 13,100), 50 ms 13,800-19,700 (median 15,600); 1 thread 13,700-15,000.
    static let slowTeamAlone: UInt64 = 50_000_000

    /// `waitUntil` for the caller at a barrier, adding the wait to `callerWaited` in a job that counts them.
    private func callerWaits(_ condition: () -> Bool) {
        guard countsCallerWaits else { return waitUntil(condition) }
        let start = DispatchTime.now().uptimeNanoseconds
        waitUntil(condition)
        callerWaited += DispatchTime.now().uptimeNanoseconds - start
    }

    /// Jobs run as a team so far (the caller's count, for timing every 16th).
    private var jobsTimed = 0

    /// Lets the workers exit. Waits for a running job to finish and keeps the team busy from then on, so a caller
    /// still holding the team runs its jobs alone.
    func shutDown() {
        while !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged { yieldProcessor() }
        quitting = true
        jobsStarted.wrappingAdd(1, ordering: .sequentiallyConsistent)
        for alarm in alarms { alarm.semaphore.signal() }
    }

    fileprivate func barrier(byCaller: Bool) {
        let opened = barriersOpened.load(ordering: .acquiring)
        if arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == size {
            arrived.store(0, ordering: .relaxed)
            barriersOpened.wrappingAdd(1, ordering: .releasing)
        } else if byCaller {
            callerWaits { barriersOpened.load(ordering: .acquiring) != opened }
        } else {
            waitUntil { barriersOpened.load(ordering: .acquiring) != opened }
        }
    }

    /// Spins until `condition` holds, yielding the core now and then: when there are more threads than free cores
    /// (a busy machine, or a team larger than the machine), the member being waited for needs it.
    ///
    /// A wait longer than `late` means a member lost its core (other programs want the cores too): a job
    /// shared with it then takes as long as the scheduler keeps it off, every time, and the members that spin take
    /// core time from the ones that compute (measured: generation with 2 threads beside another program busy on
    /// both cores ran 5-10 times slower than with 1). So for a while every job runs on the caller alone (`run` as a
    /// team of one, `runParts` part after part, which gives the same results as the team: see there), the workers
    /// sleep, and then the team is tried again (`goAlone` says for how long). Three signs set it: a wait here that
    /// long, a worker that finds a gap that long between two looks for a job (`waitForJob`), and a job during which
    /// the caller was off its core that long (`runOnEveryMember`).
    private func waitUntil(lateAfter late: UInt64 = lateNanoseconds, _ condition: () -> Bool) {
        var spins = 0
        var waitingSince: UInt64 = 0
        var wasLate = false
        while !condition() {
            spins += 1
            if spins % 1024 != 0 { continue }
            yieldProcessor()
            let now = DispatchTime.now().uptimeNanoseconds
            if waitingSince == 0 { waitingSince = now }
            if now - waitingSince > late { wasLate = true }
        }
        // from the end of the wait (a stretch that began during it would be spent waiting), and once per wait
        // (`goAlone` lengthens the stretch each time it is called soon after the last)
        if wasLate { goAlone(now: DispatchTime.now().uptimeNanoseconds) }
    }

    /// A wait this long for another member means it lost its core (a member's part of a time step takes
    /// microseconds). For a whole job, the wait must also be longer than the caller's own part of it
    /// (`runOnEveryMember`): the transformer's parts of a product take milliseconds, and a worker slower by a
    /// millisecond is still faster than no worker.
    static let lateNanoseconds: UInt64 = 1_000_000
    /// How long jobs run on the caller alone after a late member: from `shortestAlone`, doubled up to `longestAlone`
    /// while the team is late again soon after it is tried again (see `goAlone`).
    static let shortestAlone: UInt64 = 5_000_000
    static let longestAlone: UInt64 = 200_000_000
    /// This team's first stretch alone after a good run: `shortestAlone` except in tests.
    private let firstStretchAlone: UInt64
    /// The length of the last stretch alone.
    private let alonePeriod = Atomic<UInt64>(0)

    /// Runs jobs alone for a while from `now` (see `waitUntil`). A busy machine makes the team late again soon after
    /// it is tried again: while that happens within as long as the last stretch alone lasted (20 ms at least), each
    /// stretch doubles the last (5, 10, 20, ... 200 ms, and 200 from then on). A member that lost its core once (a
    /// virtual machine's core taken by its host for a millisecond, some tens of times a second on the machine the
    /// benchmarks ran on) costs only 5 ms alone.
    ///
    /// Before, every sign meant 200 ms alone, every check of a long wait gave the sign again, and any wait over 1 ms
    /// was late; on that machine (2 cores of a Zen 4 virtual machine, `charlm-bench train-profile`, 2 threads) the
    /// team then ran alone most of the time: the LSTM at size M trained at 20,400 tokens/s, now 32,300-32,800
    /// (17,400-18,600 on 1 thread); the transformer at 6/6/192 at 7,200, now 8,400-9,000; generation at H 256 made
    /// 20,400 characters/s, now 25,800-28,400. Beside two programs busy on both cores, 2 threads still run below 1
    /// at times, as before: the LSTM at 8,100-17,700 tokens/s against 11,600-13,400 on 1 (before: 7,900-9,600
    /// against 7,400-12,300).
    private func goAlone(now: UInt64, first: UInt64 = 0) {
        let period = Self.stretchAlone(now: now, lastUntil: aloneUntil.load(ordering: .relaxed),
                                       last: alonePeriod.load(ordering: .relaxed), first: max(first, firstStretchAlone))
        alonePeriod.store(period, ordering: .relaxed)
        aloneUntil.store(now + period, ordering: .relaxed)
    }

    /// How long to run alone from `now`, after a last stretch of `last` that ended at `lastUntil` (0: none yet):
    /// `first`, or twice the last (up to `longestAlone`) when the team was late again within as long as the last
    /// stretch lasted (20 ms at least) of being tried again, or during it.
    static func stretchAlone(now: UInt64, lastUntil: UInt64, last: UInt64, first: UInt64) -> UInt64 {
        let lateAgain = lastUntil != 0 && now < lastUntil + max(last, 20_000_000)
        return lateAgain ? min(longestAlone, max(first, last * 2)) : first
    }

    /// Whether jobs run on the caller alone for now (see `waitUntil`).
    private var runsAlone: Bool {
        let until = aloneUntil.load(ordering: .relaxed)
        return until != 0 && DispatchTime.now().uptimeNanoseconds < until
    }

    private func workerLoop(index: Int) {
        var jobsSeen = 0
        while true {
            waitForJob(after: jobsSeen, alarm: alarms[index - 1])
            jobsSeen = jobsStarted.load(ordering: .acquiring)
            if quitting { return }
            job?(TeamMember(index: index, team: self))
            finished.wrappingAdd(1, ordering: .releasing)
        }
    }

    /// How long a worker watches for the next job before it sleeps. Measured in time, not in spins: a count of spins
    /// lasted anywhere from a few tens to a hundred microseconds depending on how the loop compiled, and when it fell
    /// below the gap between generation's products the worker slept and woke for every character (generation at
    /// H 512 ran 10-15% slower with four times the context switches; 500 us removed both).
    static let spinNanoseconds: UInt64 = 500_000

    /// Returns once `jobsStarted` has moved past `jobsSeen`: spins for `spinNanoseconds`, then sleeps.
    /// `run` signals a worker's semaphore only when it sees the worker asleep; the worker checks for a job once more
    /// after saying so, so a job started in between is not missed (a spare signal just costs one more look).
    private func waitForJob(after jobsSeen: Int, alarm: Alarm) {
        var spins = 0
        var spinningSince: UInt64 = 0
        var lastLook: UInt64 = 0
        while jobsStarted.load(ordering: .acquiring) == jobsSeen {
            spins += 1
            // Read the clock now and then only: it costs more than a look at the counter.
            if spins & 255 != 0 { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            if spinningSince == 0 { spinningSince = now }
            // A long gap since the last look: this thread lost its core (the machine has more work than cores), and
            // its spinning takes a share of a core from the members that compute. Jobs run alone for a while (see
            // `waitUntil`), and this worker sleeps.
            let descheduled = lastLook != 0 && now - lastLook > Self.lateNanoseconds
            lastLook = now
            if descheduled { goAlone(now: now) }
            if !descheduled && now - spinningSince < Self.spinNanoseconds { continue }
            alarm.asleep.store(true, ordering: .sequentiallyConsistent)
            if jobsStarted.load(ordering: .sequentiallyConsistent) == jobsSeen { alarm.semaphore.wait() }
            alarm.asleep.store(false, ordering: .sequentiallyConsistent)
            spins = 0
            spinningSince = 0
            lastLook = 0
        }
    }

    /// One worker's semaphore, and whether it is asleep on it (or about to be) rather than watching `jobsStarted`.
    private final class Alarm: Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        let asleep = Atomic<Bool>(false)
    }
}

/// The caller's waits at barriers and its own work, added up over the counted jobs until they make `length` of time,
/// then judged: the team is slower than the caller alone when the caller waited longer than (size - 1) times its own
/// work (alone, it would have done the others' shares too). See `ThreadTeam.runOnEveryMember`.
struct SlowTeamWindow {
    /// How much of the counted jobs' time (waits and work) the team is judged on: some 50 of generation's steps.
    static let length: UInt64 = 2_000_000
    private(set) var waited: UInt64 = 0
    private(set) var worked: UInt64 = 0

    /// Adds one counted job's waits and work; once the window is full, returns whether the team was slower than its
    /// caller alone and starts a new window, else nil.
    mutating func add(waited jobWaited: UInt64, worked jobWorked: UInt64, teamSize: Int) -> Bool? {
        waited += jobWaited
        worked += jobWorked
        guard waited + worked >= Self.length else { return nil }
        defer { (waited, worked) = (0, 0) }
        return waited > UInt64(teamSize - 1) * worked
    }
}
