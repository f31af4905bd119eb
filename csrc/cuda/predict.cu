// CUDA kernels of the compiled models: linear, tree ensembles, LUT over genomes.
// One thread per row; tree nodes are read through the read-only cache.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "esm/cuda_predict.hpp"

namespace esm::cuda {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(err));
  }
}

template <class T>
T* upload(const T* host, size_t count) {
  if (count == 0) return nullptr;
  void* p = nullptr;
  check(cudaMalloc(&p, count * sizeof(T)), "cudaMalloc");
  cudaError_t err = cudaMemcpy(p, host, count * sizeof(T), cudaMemcpyHostToDevice);
  if (err != cudaSuccess) {
    cudaFree(p);
    check(err, "cudaMemcpy");
  }
  return static_cast<T*>(p);
}

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

__global__ void linear_kernel(const double* __restrict__ X, int64_t n, int64_t F,
                              const double* __restrict__ mean, const double* __restrict__ scale,
                              const double* __restrict__ coef, double intercept, bool log_target,
                              double* __restrict__ out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const double* x = X + i * F;
  double s = 0.0;
  for (int64_t j = 0; j < F; ++j) s += coef[j] * ((x[j] - mean[j]) / scale[j]);
  const double y = intercept + s;
  out[i] = log_target ? exp(y) : y;
}

template <class T>
__global__ void trees_kernel(const double* __restrict__ X, int64_t n, int64_t F,
                             const double* __restrict__ mean, const double* __restrict__ scale,
                             const T* __restrict__ thr, const int32_t* __restrict__ feature,
                             const int32_t* __restrict__ child, const double* __restrict__ value,
                             const int32_t* __restrict__ root, const int32_t* __restrict__ depth,
                             int32_t n_trees, double base, bool log_target,
                             double* __restrict__ out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const double* x = X + i * F;
  double acc = base;
  for (int32_t t = 0; t < n_trees; ++t) {
    int32_t k = __ldg(root + t);
    const int32_t d = __ldg(depth + t);
    for (int32_t s = 0; s < d; ++s) {
      const int32_t f = __ldg(feature + k);
      const T v = static_cast<T>((x[f] - __ldg(mean + f)) / __ldg(scale + f));
      k = __ldg(child + k) + (v > __ldg(thr + k) ? 1 : 0);
    }
    acc += __ldg(value + k);
  }
  out[i] = log_target ? exp(acc) : acc;
}

__global__ void lut_kernel(const int32_t* __restrict__ genomes, int64_t n, int64_t G,
                           const double* __restrict__ table, const int64_t* __restrict__ offset,
                           const int32_t* __restrict__ gene_slot,
                           const int32_t* __restrict__ slot_gene,
                           const uint8_t* __restrict__ slot_active, int32_t max_choice, double bias,
                           bool log_target, double* __restrict__ out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const int32_t* g = genomes + i * G;
  double y = bias;
  for (int64_t j = 0; j < G; ++j) {
    const int32_t s = gene_slot[j];
    bool active = true;
    if (s >= 0) {
      const int32_t sg = slot_gene[s];
      active = sg < 0 || slot_active[static_cast<int64_t>(s) * max_choice + g[sg]] != 0;
    }
    if (active) y += table[offset[j] + g[j]];
  }
  out[i] = log_target ? exp(y) : y;
}

class Common {
 public:
  explicit Common(const predict::Common& c)
      : F_(c.n_features), log_(c.target == predict::Target::kLog) {
    mean_ = upload(c.x_mean.data(), c.x_mean.size());
    scale_ = upload(c.x_scale.data(), c.x_scale.size());
  }
  ~Common() {
    cudaFree(mean_);
    cudaFree(scale_);
  }
  Common(const Common&) = delete;
  Common& operator=(const Common&) = delete;

 protected:
  int64_t F_;
  bool log_;
  double* mean_ = nullptr;
  double* scale_ = nullptr;
};

class Linear final : public DeviceModel, Common {
 public:
  Linear(const predict::Common& c, const std::vector<double>& coef, double intercept)
      : Common(c), intercept_(intercept) {
    coef_ = upload(coef.data(), coef.size());
  }
  ~Linear() override { cudaFree(coef_); }
  int64_t n_features() const override { return F_; }
  void predict(const double* X, int64_t n, double* out, uintptr_t stream) const override {
    if (n <= 0) return;
    linear_kernel<<<blocks_for(n), kThreads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
        X, n, F_, mean_, scale_, coef_, intercept_, log_, out);
    check(cudaGetLastError(), "linear kernel launch");
  }

 private:
  double intercept_;
  double* coef_ = nullptr;
};

class Trees final : public DeviceModel, Common {
 public:
  Trees(const predict::Common& c, const predict::CompactTrees& t)
      : Common(c),
        f32_(t.float32_inputs),
        base_(t.base),
        n_trees_(static_cast<int32_t>(t.root.size())) {
    if (f32_)
      thr32_ = upload(t.thr32.data(), t.thr32.size());
    else
      thr64_ = upload(t.thr64.data(), t.thr64.size());
    feature_ = upload(t.feature.data(), t.feature.size());
    child_ = upload(t.child.data(), t.child.size());
    value_ = upload(t.value.data(), t.value.size());
    root_ = upload(t.root.data(), t.root.size());
    depth_ = upload(t.depth.data(), t.depth.size());
  }
  ~Trees() override {
    cudaFree(thr32_);
    cudaFree(thr64_);
    cudaFree(feature_);
    cudaFree(child_);
    cudaFree(value_);
    cudaFree(root_);
    cudaFree(depth_);
  }
  int64_t n_features() const override { return F_; }
  void predict(const double* X, int64_t n, double* out, uintptr_t stream) const override {
    if (n <= 0) return;
    auto s = reinterpret_cast<cudaStream_t>(stream);
    if (f32_) {
      trees_kernel<float><<<blocks_for(n), kThreads, 0, s>>>(X, n, F_, mean_, scale_, thr32_,
                                                             feature_, child_, value_, root_,
                                                             depth_, n_trees_, base_, log_, out);
    } else {
      trees_kernel<double><<<blocks_for(n), kThreads, 0, s>>>(X, n, F_, mean_, scale_, thr64_,
                                                              feature_, child_, value_, root_,
                                                              depth_, n_trees_, base_, log_, out);
    }
    check(cudaGetLastError(), "trees kernel launch");
  }

 private:
  bool f32_;
  double base_;
  int32_t n_trees_;
  float* thr32_ = nullptr;
  double* thr64_ = nullptr;
  int32_t *feature_ = nullptr, *child_ = nullptr, *root_ = nullptr, *depth_ = nullptr;
  double* value_ = nullptr;
};

}  // namespace

std::unique_ptr<DeviceModel> device_linear(const predict::Common& c,
                                           const std::vector<double>& coef, double intercept) {
  return std::make_unique<Linear>(c, coef, intercept);
}

std::unique_ptr<DeviceModel> device_trees(const predict::Common& c,
                                          const predict::CompactTrees& t) {
  return std::make_unique<Trees>(c, t);
}

DeviceLut::DeviceLut(const std::vector<double>& table, const std::vector<int64_t>& offset,
                     const std::vector<int32_t>& gene_slot, const std::vector<int32_t>& slot_gene,
                     const std::vector<uint8_t>& slot_active, int32_t max_choice, double bias,
                     bool log_target)
    : n_genes_(static_cast<int64_t>(gene_slot.size())),
      n_slots_(static_cast<int64_t>(slot_gene.size())),
      max_choice_(max_choice),
      bias_(bias),
      log_(log_target) {
  table_ = upload(table.data(), table.size());
  offset_ = upload(offset.data(), offset.size());
  gene_slot_ = upload(gene_slot.data(), gene_slot.size());
  slot_gene_ = upload(slot_gene.data(), slot_gene.size());
  slot_active_ = upload(slot_active.data(), slot_active.size());
}

DeviceLut::~DeviceLut() {
  cudaFree(table_);
  cudaFree(offset_);
  cudaFree(gene_slot_);
  cudaFree(slot_gene_);
  cudaFree(slot_active_);
}

void DeviceLut::predict(const int32_t* genomes, int64_t n, double* out, uintptr_t stream) const {
  if (n <= 0) return;
  lut_kernel<<<blocks_for(n), kThreads, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
      genomes, n, n_genes_, table_, offset_, gene_slot_, slot_gene_, slot_active_, max_choice_,
      bias_, log_, out);
  check(cudaGetLastError(), "lut kernel launch");
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes == 0 ? 1 : bytes), "cudaMalloc");
  return p;
}
void device_free(void* p) {
  cudaFree(p);
}
void copy_to_device(void* dst, const void* src, size_t bytes, uintptr_t stream) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice,
                        reinterpret_cast<cudaStream_t>(stream)),
        "cudaMemcpyAsync H2D");
}
void copy_to_host(void* dst, const void* src, size_t bytes, uintptr_t stream) {
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost,
                        reinterpret_cast<cudaStream_t>(stream)),
        "cudaMemcpyAsync D2H");
  synchronize(stream);
}
void synchronize(uintptr_t stream) {
  check(cudaStreamSynchronize(reinterpret_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

}  // namespace esm::cuda
