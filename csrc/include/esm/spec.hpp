// The generic walker of spec-defined search spaces (esm.spaces.spec, docs/spaces.md).
//
// A space spec (JSON) is compiled once, in Python, into one flat int64 array, the "program",
// which is the `config` of the "spec" cost kernel: a header, then plain tables of fixed-width
// records (parameter sources, block instructions, segments, option ranges, segment keys), the
// parameter values (float64 bit patterns), the per-gene choice counts and the cost tables. No
// pointers, no virtual dispatch and no allocation per genome, so the same arrays can be copied
// to a GPU and walked there one genome per thread.
//
// Two ways to get one genome's costs from a program:
//  * the interpreter runs the block instructions of every active segment (the definition);
//  * the table walk adds, per active segment, one precomputed cost row picked by a few genes
//    (the segment's "keys": the genes its cost depends on), as the hand-written kernels did.
// spec_tabulate() fills the tables by running the interpreter, then checks the table walk
// against the interpreter on random genomes; a program whose check fails keeps interpreting.
#pragma once

#include <cstdint>

#include "esm/costs.hpp"

namespace esm::spec {

constexpr int64_t kMagic = 0x534D5345;  // "ESMS"
constexpr int64_t kVersion = 1;

// Header words.
enum Header : int64_t {
  kHMagic = 0, kHVersion, kHWords, kHGenes, kHSlots, kHMode, kHInputChannels, kHResParam,
  kHParams, kHParamsOff, kHInstr, kHInstrOff, kHSegs, kHSegsOff, kHOpts, kHOptsOff, kHKeys,
  kHKeysOff, kHReals, kHRealsOff, kHTableWords, kHTableOff, kHChoicesOff,
  kHeaderWords = 24,
};

// kHMode: 0 interpret every genome, 1 walk the cost tables.
enum Mode : int64_t { kInterpret = 0, kTables = 1 };

// A parameter source: [gene, offset, kind]; its value for a genome is
// reals[offset + genome[gene]], or reals[offset] when gene < 0.
constexpr int64_t kParamWords = 3;
enum Kind : int64_t {
  kChannels = 0, kKernel = 1, kExpand = 2, kFlag = 3, kDepth = 4, kResolution = 5,
};

// A block instruction: [op, out, kernel, expand, se, stride, groups, flags, a, b, c, d] with
// out/kernel/expand/se parameter indices (-1: none; out -1 keeps the channel count).
constexpr int64_t kInstrWords = 12;
enum Op : int64_t {
  kConv = 1,        // conv (+BN); groups 0 = depthwise
  kLinear = 2,      // flatten + linear
  kMBConv = 3,      // a: SE base (0 mid, 1 input), b: SE divisor, c: SE rounding, d: mid rounding
  kFbnet = 4,       // grouped 1x1, shuffle, depthwise kxk, grouped 1x1
  kBottleneck = 5,  // d: mid rounding
  kBasic = 6,       // d: mid rounding
  kSkip = 7,        // identity, or 1x1 conv + BN when the shape changes
  kPool = 8,        // a: kernel, b: padding, c: ceil mode
  kGlobalPool = 9,
};
enum Flag : int64_t { kBn = 1, kBias = 2, kResidual = 4 };

// A segment: [slot, depth_param, depth_min, option_gene, opt_start, opt_count, instr_start,
// instr_count, key_start, key_count, table_off, table_rows]. It runs when depth_param < 0 or
// its value exceeds depth_min; its instructions are the option range opts[opt_start +
// genome[option_gene]] when option_gene >= 0, else [instr_start, instr_start + instr_count).
constexpr int64_t kSegWords = 12;
// Option ranges are [instr_start, instr_count] pairs, keys [gene, stride] pairs.
// Cost table rows hold Accumulator::kFields values (macs, params, activation bytes, layers).
constexpr int64_t kMaxTableRows = 1 << 16;

// Checks every size, offset, index and value range of a program of `words` int64 values;
// throws std::invalid_argument naming the first problem.
void check_program(const int64_t* program, int64_t words);

// Runs the interpreter for one validated genome.
void interpret(const int64_t* program, const int32_t* genome, Accumulator& acc);

// Costs of n validated genomes with the program's mode (totals [n, F], slots [n, S, F] or null,
// both zeroed by the caller).
void walk_batch(const int64_t* program, const int32_t* genomes, int64_t n, int64_t* totals,
                int64_t* slots);

// Fills the cost tables of a checked program in place (mode must be kTables and every segment
// must have its table region) and checks the table walk against the interpreter on
// `check_genomes` random genomes. Returns true when they agree; otherwise sets the mode to
// kInterpret and returns false.
bool tabulate(int64_t* program, int64_t words, int64_t check_genomes);

}  // namespace esm::spec
