// The recurrent layers' fused time loops (Recurrence.swift: each thread its units' product and cell, one barrier per
// step) against the split loops they replaced (product by columns, cell by rows, two barriers per step), for every
// cell, forward and backward, with dropout, on every CPU class this machine can compute as. ModelTests and
// PackedProductTests check the default (fused) passes against the naive Double model and finite differences.

@testable import CharLM
import Foundation
import Testing

/// The fused loops give the split loops' results bit for bit, not merely within float32 rounding: every element of
/// the recurrent products is summed by the same kernel in the same order (k = 0, 1, ...) whichever thread computes
/// it, and the cells are element-wise, each unit's lanes computed by the same instructions (a thread's units start at
/// a multiple of 16, so even the vector groups are the same). So any difference at all is a race or a unit computed
/// twice or not at all. Shapes: H 128 is two 64-wide panels (one per thread on the wide kernel); H 100 two panels of
/// 64 and 36 units (a partial panel and a partial lane group); H 40 three 16-wide panels (one per thread of three on
/// the avx2 and narrow kernels). Three layers with dropout 0.3: two dropout boundaries, masks drawn alike in both.
@Test(arguments: [(H: 128, B: 13, T: 5), (H: 100, B: 7, T: 4), (H: 40, B: 9, T: 6)], LayerKind.allCases)
func fusedTimeLoopsMatchTheSplitLoopsBitForBit(shape: (H: Int, B: Int, T: Int), cell: LayerKind) throws {
    let (V, E, L) = (11, 8, 3)
    let model = try makeModel(V: V, E: E, H: shape.H, L: L, dropout: 0.3, seed: 41, cell: cell)
    let inputs = randomSequences(B: shape.B, T: shape.T, V: V, seed: 42)
    let targets = randomSequences(B: shape.B, T: shape.T, V: V, seed: 43)
    var fusedRuns = 0
    for cpu in runnableClasses {
        // the large products cut the same way in every pass (a product cut otherwise may round differently)
        let products = ComputeContext(threads: 2, products: .packed, cpu: cpu)
        for threads in [1, 2, 3] {
            let fused = ComputeContext(threads: threads, productsAs: products, timeLoop: .fused)
            let split = ComputeContext(threads: threads, productsAs: products, timeLoop: .split)
            if runsFused(fused, hiddenSize: shape.H) && threads > 1 { fusedRuns += 1 }
            #expect(!runsFused(split, hiddenSize: shape.H))
            let (fusedLogits, fusedGradients) = pass(model, inputs: inputs, targets: targets, context: fused)
            let (splitLogits, splitGradients) = pass(model, inputs: inputs, targets: targets, context: split)
            let run = "\(cell) H \(shape.H) \(cpu) \(threads) threads"
            #expect(fusedLogits == splitLogits, "forward differs: \(run)")
            #expect(fusedGradients == splitGradients, "backward differs: \(run)")
            #expect(fusedGradients.contains { $0 != 0 }, "no gradient at all: \(run)")
        }
    }
    // Not vacuous: on some class the loop really shared units between threads.
    #expect(fusedRuns > 0, "H \(shape.H): the fused loop never ran on more than one thread")
}

/// The loop falls back to the split schedule only where the units would share unevenly between threads.
@Test func fusedLoopRunsWhereTheUnitsShareEvenly() {
    let context = ComputeContext(threads: 2, products: .packed, cpu: .current)
    let width = context.packedKernel.panelWidth
    #expect(runsFused(context, hiddenSize: 2 * width))
    #expect(runsFused(context, hiddenSize: 8 * width + 1))
    #expect(!runsFused(context, hiddenSize: width))
    #expect(!runsFused(ComputeContext(threads: 2, products: .packed, cpu: .current, timeLoop: .split),
                       hiddenSize: 2 * width))
}
