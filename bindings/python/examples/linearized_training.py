#!/usr/bin/env python3
"""linearized_training.py -- examples/linearized_training.c in Python: the
linearized network (trainer order 1, Lee et al. 2019),

    f_1(theta; x) = f(theta0; x) + J(theta0; x) (theta - theta0),

linear in theta around the initialization theta0, trained with the data,
loss, optimizer and report of full_training.py: one trainer setting,
order = 1, makes the difference.

    python3 bindings/python/examples/linearized_training.py [--train N] ... (--help)
"""

import sys
import time

import taylornet as tn

import fashion_mnist
import training


def main(argv=None):
    # A linearized step costs about 2.3 full steps, so the default run is
    # cut to a third of the training set and 5 epochs.
    args = training.flags("Trains the linearized MLP (trainer order 1 around the "
                          "initialization) on Fashion-MNIST.",
                          train=20000, epochs=5).parse_args(argv)
    data = fashion_mnist.load(args)

    with tn.Context(threads=args.threads) as ctx:
        # The network, as in full_training.py.
        net = tn.Network(ctx, data.train.d)
        for _ in range(args.depth):
            net.add_dense(args.width).add_activation("relu")
        net.add_dense(data.train.classes).set("parameterization", args.param).init(args.seed)

        trainer = tn.Trainer(net, loss=training.LOSSES[args.loss], optimizer=args.optimizer)
        # Order 1: from now on the trainer trains f_1, whose base theta0 is
        # the network's parameters at this moment -- the initialization.
        # The steps move theta; theta0 stays where it is.
        trainer.set("order", 1)
        training.print_setup(args, net, "linearized network (order 1 around the initialization)")

        batches = fashion_mnist.Minibatches(data.train, args.batch, args.seed)
        start = time.monotonic()
        for epoch in range(args.epochs):
            lr = training.learning_rate(args, epoch)
            trainer.set("learning_rate", lr)
            loss_sum = sum(trainer.step(x, y) * len(x) for x, y in batches.epoch())
            # predict evaluates the trained model, f_1, not the network f.
            accuracy = fashion_mnist.accuracy(trainer.predict, data.test)
            training.print_epoch(epoch, lr, loss_sum / data.train.n, accuracy,
                                 time.monotonic() - start)
        training.print_final(accuracy, args.epochs, time.monotonic() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
