#!/usr/bin/env python3
"""taylorized_training.py -- examples/taylorized_training.c in Python: the
order-k Taylor model of an MLP around its initialization (trainer order k,
Bai et al. 2020),

    f_k(theta; x) = sum_{j=0..k} (1/j!) D^j f(theta0; x)[(theta - theta0)^j],

trained with the data, loss, optimizer and report of full_training.py.
Then it evaluates the expansion (tn.Taylor, made at the initialization) on
test images at the trained theta: the norms of its terms, the divergence
indicator |z_k| / |z_{k-1}|, and how far f_k is from the network f.

    python3 bindings/python/examples/taylorized_training.py [--order K] ... (--help)
"""

import sys
import time

import taylornet as tn

import fashion_mnist
import training


def main(argv=None):
    # An order-k step costs about (5k + 2) / 3 full steps: a shorter run.
    parser = training.flags("Trains the order-k Taylor model of an MLP around its "
                            "initialization on Fashion-MNIST.", train=20000, epochs=5)
    parser.add_argument("--order", type=int, default=2, metavar="K", help="Taylor order k")
    parser.add_argument("--div-images", type=int, default=1000, metavar="N",
                        help="test images of the final expansion report")
    args = parser.parse_args(argv)
    if not 1 <= args.order <= tn.Taylor.max_order():
        parser.error(f"--order must be in [1, {tn.Taylor.max_order()}]")
    if args.div_images <= 0:
        parser.error("--div-images must be > 0")
    data = fashion_mnist.load(args)

    with tn.Context(threads=args.threads) as ctx:
        net = tn.Network(ctx, data.train.d)
        for _ in range(args.depth):
            net.add_dense(args.width).add_activation("relu")
        net.add_dense(data.train.classes).set("parameterization", args.param).init(args.seed)

        trainer = tn.Trainer(net, loss=training.LOSSES[args.loss], optimizer=args.optimizer)
        # Order k: the trainer trains f_k around the parameters now, the
        # initialization theta0 -- as does the expansion made here, which is
        # evaluated at the trained theta at the end.
        trainer.set("order", args.order)
        taylor = tn.Taylor(net, args.order)
        training.print_setup(args, net,
                             f"order-{args.order} Taylor model around the initialization")

        batches = fashion_mnist.Minibatches(data.train, args.batch, args.seed)
        start = time.monotonic()
        for epoch in range(args.epochs):
            lr = training.learning_rate(args, epoch)
            trainer.set("learning_rate", lr)
            loss_sum = sum(trainer.step(x, y) * len(x) for x, y in batches.epoch())
            accuracy = fashion_mnist.accuracy(trainer.predict, data.test)
            training.print_epoch(epoch, lr, loss_sum / data.train.n, accuracy,
                                 time.monotonic() - start)
        training.print_final(accuracy, args.epochs, time.monotonic() - start)

        # The expansion at the trained theta (the network's parameters now)
        # on the first test images: its terms z_0..z_k and f_k, their sum,
        # highest order first as the library sums.
        x = data.test.x[:args.div_images]
        terms = taylor.terms(x)
        fk = sum(terms[j] for j in reversed(range(args.order + 1)))
        training.print_expansion(args.order, taylor.term_norms(), taylor.divergence(), fk,
                                 trainer.predict(x), net.forward(x),
                                 data.test.labels[:args.div_images])
    return 0


if __name__ == "__main__":
    sys.exit(main())
