// The sweep worker: runs one shard of a sweep spec into a folder run store (see ScalingInteractive.Sweeps.SweepWorker).
//   dotnet ScalingInteractive.Worker.dll --spec spec.json --shard 0/3 --store DIR
//   dotnet ScalingInteractive.Worker.dll --spec spec.json --shard '$JOB_COMPLETION_INDEX/3' --store DIR
return ScalingInteractive.Sweeps.SweepWorker.Main(args);
