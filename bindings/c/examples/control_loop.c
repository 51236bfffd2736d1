/*
 * A robot control loop on libact_core: load a checkpoint, run N steps (default 100) at 50 Hz with
 * synthetic camera images and joint positions, print the latency of each act_policy_step.
 *
 *   cc -std=c11 -O2 control_loop.c -I<prefix>/include -L<prefix>/lib -lact_core -o control_loop
 *   ./control_loop CHECKPOINT [--steps N] [--hz F] [--no-pacing] [--ensemble COEFF] [--threads N]
 *                [--realtime PRIORITY] [--async]
 *
 * --async opens the policy with ACT_ASYNC_ALIGNED: queries run on the library's inference thread
 * and act_policy_step returns at once with the action for the current step (the first step of the
 * episode waits for the first chunk); the loop also prints how old the newest chunk was and how
 * many steps held the previous action because every chunk had run out.
 * --realtime runs this thread and the library's worker threads under SCHED_FIFO at PRIORITY
 * (1..=99; needs root, CAP_SYS_NICE or `ulimit -r`), as a robot controller would.
 * --no-pacing (or ACT_NO_PACING=1 in the environment) runs the steps back to back (tests, CI).
 * The synthetic inputs are deterministic; bindings/tests/c_examples.rs recomputes them.
 */
#define _POSIX_C_SOURCE 200809L
#include <act_core.h>

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Sleep until an absolute CLOCK_MONOTONIC deadline (no drift over many periods). */
static void sleep_until(const struct timespec *deadline) {
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL) != 0) {
    }
}

static void add_ns(struct timespec *t, long ns) {
    t->tv_nsec += ns;
    while (t->tv_nsec >= 1000000000L) {
        t->tv_nsec -= 1000000000L;
        t->tv_sec += 1;
    }
}

/* What a robot's drivers would deliver: joint positions and one RGB image per camera. */
static void fill_inputs(size_t step, float *qpos, size_t state_dim, act_image *images, uint8_t **pixels,
                        size_t n_cameras) {
    for (size_t j = 0; j < state_dim; j++) qpos[j] = 0.01f * (float)((step + j) % 20) - 0.1f;
    for (size_t c = 0; c < n_cameras; c++) {
        uint8_t *p = pixels[c];
        for (size_t y = 0; y < images[c].height; y++)
            for (size_t x = 0; x < images[c].width; x++)
                for (size_t ch = 0; ch < 3; ch++) *p++ = (uint8_t)((3 * x + 5 * y + 50 * ch + 20 * c + 7 * step) % 256);
    }
}

static const char *isa_name(uint32_t isa) {
    switch (isa) {
        case ACT_ISA_SCALAR: return "scalar";
        case ACT_ISA_AVX2: return "avx2";
        case ACT_ISA_AVX512: return "avx512";
        case ACT_ISA_NEON: return "neon";
        default: return "unknown";
    }
}

static void print_action(const char *label, const float *a, size_t n) {
    printf("%s:", label);
    for (size_t i = 0; i < n; i++) printf(" %.6e", (double)a[i]);
    printf("\n");
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    const char *path = NULL;
    long steps = 100;
    double hz = 50.0;
    const char *env = getenv("ACT_NO_PACING");
    int pacing = !(env && env[0] && strcmp(env, "0") != 0);
    act_options options = act_options_default();
    const char *usage = "usage: %s CHECKPOINT [--steps N] [--hz F] [--no-pacing] [--ensemble COEFF] [--threads N] [--realtime PRIORITY] [--async]\n";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc) steps = atol(argv[++i]);
        else if (strcmp(argv[i], "--hz") == 0 && i + 1 < argc) hz = atof(argv[++i]);
        else if (strcmp(argv[i], "--no-pacing") == 0) pacing = 0;
        else if (strcmp(argv[i], "--ensemble") == 0 && i + 1 < argc) {
            options.ensembling = ACT_ENSEMBLING_COEFFICIENT;
            options.ensemble_coeff = (float)atof(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) options.threads = (uint32_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--realtime") == 0 && i + 1 < argc) options.realtime_priority = (uint32_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--async") == 0) options.asynchronous = ACT_ASYNC_ALIGNED;
        else if (!path && argv[i][0] != '-') path = argv[i];
        else {
            fprintf(stderr, usage, argv[0]);
            return 2;
        }
    }
    if (!path || steps <= 0 || !(hz > 0.0)) {
        fprintf(stderr, usage, argv[0]);
        return 2;
    }
    if (options.realtime_priority > 0) {
        /* The control thread itself; act_policy_open puts the workers at the same priority. */
        struct sched_param param = {0};
        param.sched_priority = (int)options.realtime_priority;
        int e = pthread_setschedparam(pthread_self(), SCHED_FIFO, &param);
        if (e != 0) {
            fprintf(stderr, "SCHED_FIFO at priority %u refused: %s (needs root, CAP_SYS_NICE or ulimit -r)\n",
                    options.realtime_priority, strerror(e));
            return 1;
        }
    }

    /* Setup (allocates): open, query shapes, allocate buffers. */
    act_policy *policy = NULL;
    act_status s = act_policy_open(path, &options, &policy);
    if (s != ACT_OK) {
        fprintf(stderr, "open %s: %s: %s\n", path, act_status_string(s), act_last_error());
        return 1;
    }
    act_info info;
    act_policy_info(policy, &info);
    printf("act-core %s: state_dim=%zu action_dim=%zu chunk_size=%zu cameras=%zu ensembling=%s\n", act_version(),
           info.state_dim, info.action_dim, info.chunk_size, info.n_cameras,
           info.ensembling == ACT_ENSEMBLING_COEFFICIENT ? "temporal" : "chunk");
    printf("kernels: %s\n", isa_name(info.isa));
    printf("stepping: %s\n", info.asynchronous == ACT_ASYNC_OFF ? "synchronous" : "asynchronous (aligned)");

    float *qpos = malloc(info.state_dim * sizeof *qpos);
    float *action = malloc(info.action_dim * sizeof *action);
    double *latency = malloc((size_t)steps * sizeof *latency);
    act_image images[ACT_MAX_CAMERAS];
    uint8_t *pixels[ACT_MAX_CAMERAS] = {0};
    int ok = qpos && action && latency;
    for (size_t c = 0; ok && c < info.n_cameras; c++) {
        act_camera cam;
        act_policy_camera(policy, c, &cam);
        printf("camera %zu: %s %zux%zu\n", c, cam.name, cam.height, cam.width);
        pixels[c] = malloc(cam.height * cam.width * 3);
        images[c] = (act_image){pixels[c], cam.height, cam.width};
        ok = pixels[c] != NULL;
    }
    int rc = 0;
    if (!ok) {
        fprintf(stderr, "out of memory\n");
        rc = 1;
        goto done;
    }

    /* The control loop (allocates nothing): read sensors, step, send the action, wait. */
    const long period_ns = (long)(1e9 / hz);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    double start = now_s();
    long overruns = 0;
    act_async_status async_status = {0};
    int64_t max_age = -1;
    for (long t = 0; t < steps; t++) {
        fill_inputs((size_t)t, qpos, info.state_dim, images, pixels, info.n_cameras);
        double t0 = now_s();
        s = act_policy_step(policy, qpos, info.state_dim, images, info.n_cameras, action, info.action_dim);
        latency[t] = now_s() - t0;
        if (s != ACT_OK) {
            fprintf(stderr, "step %ld: %s: %s\n", t, act_status_string(s), act_policy_last_error(policy));
            rc = 1;
            goto done;
        }
        for (size_t i = 0; i < info.action_dim; i++) {
            if (!isfinite(action[i])) {
                fprintf(stderr, "step %ld: non-finite action\n", t);
                rc = 1;
                goto done;
            }
        }
        if (info.asynchronous != ACT_ASYNC_OFF) {
            act_policy_async_status(policy, &async_status);
            if (async_status.newest_chunk_age > max_age) max_age = async_status.newest_chunk_age;
        }
        if (t == 0) print_action("first action", action, info.action_dim);
        if (t == steps - 1) print_action("last action", action, info.action_dim);
        /* send_to_robot(action); */
        if (latency[t] * 1e9 > (double)period_ns) overruns++;
        if (pacing) {
            add_ns(&next, period_ns);
            sleep_until(&next);
        }
    }
    double wall = now_s() - start;
    act_policy_reset(policy); /* before the next episode */

    double mean = 0.0;
    for (long t = 0; t < steps; t++) mean += latency[t];
    mean /= (double)steps;
    qsort(latency, (size_t)steps, sizeof *latency, cmp_double);
    printf("steps: %ld at %s, wall %.3f s\n", steps, pacing ? "paced" : "unpaced", wall);
    printf("step latency ms: mean %.3f p50 %.3f p99 %.3f max %.3f (period %.3f, overruns %ld)\n", mean * 1e3,
           latency[steps / 2] * 1e3, latency[((steps - 1) * 99) / 100] * 1e3, latency[steps - 1] * 1e3, period_ns * 1e-6,
           overruns);
    if (info.asynchronous != ACT_ASYNC_OFF)
        printf("newest chunk age: at most %lld steps; chunks %llu, held steps %llu\n", (long long)max_age,
               (unsigned long long)async_status.chunks, (unsigned long long)async_status.held_steps);

done:
    for (size_t c = 0; c < ACT_MAX_CAMERAS; c++) free(pixels[c]);
    free(latency);
    free(action);
    free(qpos);
    act_policy_free(policy);
    return rc;
}
