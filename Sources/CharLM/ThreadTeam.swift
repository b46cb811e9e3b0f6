// The threads that run the LSTM's time loops: the calling thread plus `size - 1` workers, started once and reused.
//
// A time step is too short (a few hundred microseconds) for a thread pool that hands out tasks: instead the whole
// loop is one job that every member runs, each on its own share of the work (its panels of the packed weights, its
// rows of the batch), meeting at a spinning barrier twice per step. Between jobs the workers sleep on a semaphore.
// Matrix products outside the time loops go to BLAS, which has threads of its own (BLAS.swift).

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
    func barrier() { team.barrier() }
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
    /// A team of one, for callers that find the team busy.
    static let solo = ThreadTeam(size: 1)
    private let wakeUp: [DispatchSemaphore]
    /// Workers that have finished the current job.
    private let finished = Atomic<Int>(0)
    /// Members that have reached the current barrier, and how many barriers have opened so far.
    private let arrived = Atomic<Int>(0)
    private let barriersOpened = Atomic<Int>(0)

    /// A team of `size` threads (the caller and `size - 1` workers).
    init(size: Int) {
        self.size = max(1, size)
        wakeUp = (1..<self.size).map { _ in DispatchSemaphore(value: 0) }
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
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return job(TeamMember(index: 0, team: Self.solo))
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(job) { job in
            self.job = job
            finished.store(0, ordering: .relaxed)
            for semaphore in wakeUp { semaphore.signal() }
            job(TeamMember(index: 0, team: self))
            waitUntil { finished.load(ordering: .acquiring) == size - 1 }
            self.job = nil
        }
    }

    /// Lets the workers exit once they are idle; the team must not be used afterwards.
    func shutDown() {
        quitting = true
        for semaphore in wakeUp { semaphore.signal() }
    }

    fileprivate func barrier() {
        let opened = barriersOpened.load(ordering: .acquiring)
        if arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == size {
            arrived.store(0, ordering: .relaxed)
            barriersOpened.wrappingAdd(1, ordering: .releasing)
        } else {
            waitUntil { barriersOpened.load(ordering: .acquiring) != opened }
        }
    }

    /// Spins until `condition` holds, yielding the core now and then: when there are more threads than free cores
    /// (a busy machine, or a team larger than the machine), the member being waited for needs it.
    private func waitUntil(_ condition: () -> Bool) {
        var spins = 0
        while !condition() {
            spins += 1
            if spins % 1024 == 0 { sched_yield() }
        }
    }

    private func workerLoop(index: Int) {
        while true {
            wakeUp[index - 1].wait()
            if quitting { return }
            job?(TeamMember(index: index, team: self))
            finished.wrappingAdd(1, ordering: .releasing)
        }
    }
}

/// How many threads charlm computes with.
public enum ComputeThreads {
    private static let current = Mutex(ThreadTeam(size: ProcessInfo.processInfo.activeProcessorCount))

    /// The team the LSTM layers run their time loops on.
    static var team: ThreadTeam { current.withLock { $0 } }

    /// Threads for the time loops and for BLAS (at least 1).
    public static var count: Int { team.size }

    /// Sets the number of threads for the time loops and for BLAS.
    public static func set(_ count: Int) {
        let count = max(1, count)
        BLAS.setThreadCount(count)
        current.withLock { team in
            guard team.size != count else { return }
            team.shutDown()
            team = ThreadTeam(size: count)
        }
    }
}
