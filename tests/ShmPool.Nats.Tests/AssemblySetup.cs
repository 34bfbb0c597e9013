// Cross-process tests share two cores and a nats-server each: run test classes one at a time so deadlines stay honest.
[assembly: DoNotParallelize]
