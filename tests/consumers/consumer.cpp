// consumer.cpp -- a C++ program built outside the source tree against the
// installed library (tests/consumers/run.sh):
//   c++ -std=c++11 consumer.cpp $(pkg-config --cflags --libs taylornet)
// Checks that the header is usable from C++ (extern "C", no C-only
// constructs), then trains a two-class classifier of points on two
// concentric rings with softmax cross-entropy and Nesterov momentum; passes
// when the loss falls and the version matches the header.
#include <taylornet.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct ctx_deleter {
    void operator()(tn_ctx *c) const { tn_ctx_free(c); }
};
struct net_deleter {
    void operator()(tn_net *n) const { tn_net_free(n); }
};
struct trainer_deleter {
    void operator()(tn_trainer *t) const { tn_trainer_free(t); }
};

void check(tn_status st, const tn_ctx *ctx, const char *what)
{
    if (st != TN_OK)
        throw std::runtime_error(std::string(what) + ": " + tn_status_string(st) + ": " +
                                 tn_ctx_errmsg(ctx));
}

int run()
{
    const std::string want = std::to_string(TN_VERSION_MAJOR) + "." +
                             std::to_string(TN_VERSION_MINOR) + "." +
                             std::to_string(TN_VERSION_PATCH);
    if (want != tn_version_string() || tn_version_number() != TN_VERSION_NUMBER) {
        std::fprintf(stderr, "consumer-cpp: library version %s, header %s\n",
                     tn_version_string(), want.c_str());
        return 1;
    }

    // Two classes on concentric rings: radius 0.5 (class 0) and 1.0 (class 1).
    const std::size_t n = 80, d = 2, classes = 2;
    std::vector<double> x(n * d), y(n * classes, 0.0);
    for (std::size_t i = 0; i < n; i++) {
        const std::size_t c = i % 2;
        const double angle = 0.157 * static_cast<double>(i), r = c ? 1.0 : 0.5;
        x[i * d] = r * std::cos(angle);
        x[i * d + 1] = r * std::sin(angle);
        y[i * classes + c] = 1.0;
    }

    tn_ctx *raw_ctx = nullptr;
    if (tn_ctx_create(&raw_ctx) != TN_OK) throw std::runtime_error("tn_ctx_create failed");
    std::unique_ptr<tn_ctx, ctx_deleter> ctx(raw_ctx);

    tn_net *raw_net = nullptr;
    check(tn_net_create(ctx.get(), &d, 1, &raw_net), ctx.get(), "tn_net_create");
    std::unique_ptr<tn_net, net_deleter> net(raw_net);
    check(tn_net_add_dense(net.get(), 32), ctx.get(), "tn_net_add_dense");
    check(tn_net_add_activation(net.get(), TN_ACT_RELU), ctx.get(), "tn_net_add_activation");
    check(tn_net_add_dense(net.get(), classes), ctx.get(), "tn_net_add_dense");
    check(tn_net_init(net.get(), 7), ctx.get(), "tn_net_init");

    tn_trainer *raw_tr = nullptr;
    check(tn_trainer_create(net.get(), &raw_tr), ctx.get(), "tn_trainer_create");
    // Declared after net, so it is freed first, as the API requires.
    std::unique_ptr<tn_trainer, trainer_deleter> tr(raw_tr);
    check(tn_trainer_set(tr.get(), TN_TRAIN_LOSS, TN_LOSS_SOFTMAX_XENT), ctx.get(), "set loss");
    check(tn_trainer_set(tr.get(), TN_TRAIN_OPTIMIZER, TN_OPT_NESTEROV), ctx.get(), "set opt");
    check(tn_trainer_set(tr.get(), TN_TRAIN_LEARNING_RATE, 0.3), ctx.get(), "set lr");

    double first = 0.0, last = 0.0;
    check(tn_trainer_loss(tr.get(), x.data(), y.data(), n, &first), ctx.get(), "tn_trainer_loss");
    for (int step = 0; step < 300; step++)
        check(tn_trainer_step(tr.get(), x.data(), y.data(), n, nullptr), ctx.get(),
              "tn_trainer_step");
    check(tn_trainer_loss(tr.get(), x.data(), y.data(), n, &last), ctx.get(), "tn_trainer_loss");

    std::vector<double> logits(n * classes);
    check(tn_trainer_predict(tr.get(), x.data(), n, logits.data()), ctx.get(),
          "tn_trainer_predict");
    std::size_t correct = 0;
    for (std::size_t i = 0; i < n; i++)
        correct += (logits[i * classes + 1] > logits[i * classes]) == (i % 2 == 1);

    if (!(last < 0.5 * first)) {
        std::fprintf(stderr, "consumer-cpp: loss %g -> %g did not fall enough\n", first, last);
        return 1;
    }
    std::printf("consumer-cpp: taylornet %s, loss %.4g -> %.4g, train accuracy %zu/%zu\n",
                tn_version_string(), first, last, correct, n);
    std::printf("OK\n");
    return 0;
}

}  // namespace

int main()
{
    try {
        return run();
    } catch (const std::exception &e) {
        std::fprintf(stderr, "consumer-cpp: %s\n", e.what());
        return 1;
    }
}
