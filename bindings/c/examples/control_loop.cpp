// The control loop of control_loop.c in C++, over a small RAII wrapper (act::Policy) that owns the
// handle, turns error statuses into exceptions at setup and keeps the hot path allocation-free.
//
//   c++ -std=c++17 -O2 control_loop.cpp -I<prefix>/include -L<prefix>/lib -lact_core -o control_loop_cpp
//   ./control_loop_cpp CHECKPOINT [--steps N] [--hz F] [--no-pacing] [--ensemble COEFF]
#include <act_core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace act {

class Error : public std::runtime_error {
  public:
    Error(act_status status, const std::string &what) : std::runtime_error(what), status_(status) {}
    act_status status() const noexcept { return status_; }

  private:
    act_status status_;
};

// Owns one act_policy. Move-only; the destructor frees it. Use from one thread at a time.
class Policy {
  public:
    explicit Policy(const std::string &path, const act_options &options = act_options_default()) {
        act_status s = act_policy_open(path.c_str(), &options, &p_);
        if (s != ACT_OK) throw Error(s, "open " + path + ": " + act_last_error());
        act_policy_info(p_, &info_);
        for (size_t i = 0; i < info_.n_cameras; i++) {
            act_camera c;
            act_policy_camera(p_, i, &c);
            cameras_.push_back(c);
        }
    }
    ~Policy() { act_policy_free(p_); }
    Policy(Policy &&o) noexcept : p_(std::exchange(o.p_, nullptr)), info_(o.info_), cameras_(std::move(o.cameras_)) {}
    Policy &operator=(Policy &&o) noexcept {
        if (this != &o) {
            act_policy_free(p_);
            p_ = std::exchange(o.p_, nullptr);
            info_ = o.info_;
            cameras_ = std::move(o.cameras_);
        }
        return *this;
    }
    Policy(const Policy &) = delete;
    Policy &operator=(const Policy &) = delete;

    const act_info &info() const noexcept { return info_; }
    const std::vector<act_camera> &cameras() const noexcept { return cameras_; }

    // Hot path: no allocation, no exception; the status is returned and message() explains it.
    act_status step(const float *qpos, const act_image *images, float *action) noexcept {
        return act_policy_step(p_, qpos, info_.state_dim, images, info_.n_cameras, action, info_.action_dim);
    }
    act_status predict_chunk(const float *qpos, const act_image *images, float *actions) noexcept {
        return act_policy_predict_chunk(p_, qpos, info_.state_dim, images, info_.n_cameras, actions,
                                        info_.chunk_size * info_.action_dim);
    }
    act_status reset() noexcept { return act_policy_reset(p_); }
    const char *message() const noexcept { return act_policy_last_error(p_); }

  private:
    act_policy *p_ = nullptr;
    act_info info_{};
    std::vector<act_camera> cameras_;
};

} // namespace act

namespace {

// Same synthetic inputs as control_loop.c.
void fill_inputs(size_t step, std::vector<float> &qpos, std::vector<std::vector<uint8_t>> &pixels,
                 const std::vector<act_camera> &cams) {
    for (size_t j = 0; j < qpos.size(); j++) qpos[j] = 0.01f * static_cast<float>((step + j) % 20) - 0.1f;
    for (size_t c = 0; c < cams.size(); c++) {
        uint8_t *p = pixels[c].data();
        for (size_t y = 0; y < cams[c].height; y++)
            for (size_t x = 0; x < cams[c].width; x++)
                for (size_t ch = 0; ch < 3; ch++)
                    *p++ = static_cast<uint8_t>((3 * x + 5 * y + 50 * ch + 20 * c + 7 * step) % 256);
    }
}

void print_action(const char *label, const std::vector<float> &a) {
    std::printf("%s:", label);
    for (float v : a) std::printf(" %.6e", static_cast<double>(v));
    std::printf("\n");
}

int usage(const char *argv0) {
    std::fprintf(stderr, "usage: %s CHECKPOINT [--steps N] [--hz F] [--no-pacing] [--ensemble COEFF]\n", argv0);
    return 2;
}

} // namespace

int main(int argc, char **argv) {
    std::string path;
    long steps = 100;
    double hz = 50.0;
    const char *env = std::getenv("ACT_NO_PACING");
    bool pacing = !(env && env[0] && std::strcmp(env, "0") != 0);
    act_options options = act_options_default();
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--steps" && i + 1 < argc) steps = std::atol(argv[++i]);
        else if (a == "--hz" && i + 1 < argc) hz = std::atof(argv[++i]);
        else if (a == "--no-pacing") pacing = false;
        else if (a == "--ensemble" && i + 1 < argc) {
            options.ensembling = ACT_ENSEMBLING_COEFFICIENT;
            options.ensemble_coeff = static_cast<float>(std::atof(argv[++i]));
        } else if (path.empty() && a[0] != '-') path = a;
        else return usage(argv[0]);
    }
    if (path.empty() || steps <= 0 || !(hz > 0.0)) return usage(argv[0]);

    try {
        act::Policy policy(path, options);
        const act_info &info = policy.info();
        std::printf("act-core %s: state_dim=%zu action_dim=%zu chunk_size=%zu cameras=%zu ensembling=%s\n",
                    act_version(), info.state_dim, info.action_dim, info.chunk_size, info.n_cameras,
                    info.ensembling == ACT_ENSEMBLING_COEFFICIENT ? "temporal" : "chunk");
        std::vector<float> qpos(info.state_dim), action(info.action_dim);
        std::vector<std::vector<uint8_t>> pixels;
        std::vector<act_image> images;
        for (size_t c = 0; c < policy.cameras().size(); c++) {
            const act_camera &cam = policy.cameras()[c];
            std::printf("camera %zu: %s %zux%zu\n", c, cam.name, cam.height, cam.width);
            pixels.emplace_back(cam.height * cam.width * 3);
        }
        for (size_t c = 0; c < pixels.size(); c++)
            images.push_back(act_image{pixels[c].data(), policy.cameras()[c].height, policy.cameras()[c].width});
        std::vector<double> latency(static_cast<size_t>(steps));

        using clock = std::chrono::steady_clock;
        const auto period = std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(1.0 / hz));
        auto next = clock::now();
        const auto start = next;
        long overruns = 0;
        for (long t = 0; t < steps; t++) {
            fill_inputs(static_cast<size_t>(t), qpos, pixels, policy.cameras());
            auto t0 = clock::now();
            act_status s = policy.step(qpos.data(), images.data(), action.data());
            latency[t] = std::chrono::duration<double>(clock::now() - t0).count();
            if (s != ACT_OK) {
                std::fprintf(stderr, "step %ld: %s: %s\n", t, act_status_string(s), policy.message());
                return 1;
            }
            if (!std::all_of(action.begin(), action.end(), [](float v) { return std::isfinite(v); })) {
                std::fprintf(stderr, "step %ld: non-finite action\n", t);
                return 1;
            }
            if (t == 0) print_action("first action", action);
            if (t == steps - 1) print_action("last action", action);
            if (latency[t] > std::chrono::duration<double>(period).count()) overruns++;
            if (pacing) {
                next += period;
                std::this_thread::sleep_until(next);
            }
        }
        double wall = std::chrono::duration<double>(clock::now() - start).count();
        policy.reset();

        double mean = 0.0;
        for (double l : latency) mean += l;
        mean /= static_cast<double>(steps);
        std::sort(latency.begin(), latency.end());
        std::printf("steps: %ld at %s, wall %.3f s\n", steps, pacing ? "paced" : "unpaced", wall);
        std::printf("step latency ms: mean %.3f p50 %.3f p99 %.3f max %.3f (period %.3f, overruns %ld)\n",
                    mean * 1e3, latency[steps / 2] * 1e3, latency[((steps - 1) * 99) / 100] * 1e3,
                    latency[steps - 1] * 1e3, 1e3 / hz, overruns);
    } catch (const act::Error &e) {
        std::fprintf(stderr, "%s: %s\n", act_status_string(e.status()), e.what());
        return 1;
    }
    return 0;
}
