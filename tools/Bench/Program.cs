using AlexNet.Bench;

// alexnet-bench: the measurements of docs/benchmarks.md "Serving and search speed" (run.sh runs them all).
var command = args.Length > 0 ? args[0] : "help";
var rest = args.Skip(1).ToArray();
string Opt(string name, string fallback) { var i = Array.IndexOf(rest, name); return i >= 0 && i + 1 < rest.Length ? rest[i + 1] : fallback; }
int[] Ints(string name, string fallback) => [.. Opt(name, fallback).Split(',').Select(int.Parse)];
switch (command)
{
    case "search":
        SearchBench.Run(Ints("--n", "10000,100000"), int.Parse(Opt("--dim", "4096")), int.Parse(Opt("--queries", "30")),
            int.Parse(Opt("--k", "10")), int.Parse(Opt("--threads", "0")));
        break;
    case "search-pass":
        ConcurrentSearchBench.Pass(int.Parse(Opt("--n", "30000")), int.Parse(Opt("--dim", "4096")), Ints("--groups", "1,4,8,16"),
            double.Parse(Opt("--seconds", "3")), int.Parse(Opt("--k", "10")), int.Parse(Opt("--threads", "1")),
            [.. Opt("--storage", "Float32,Float16,Int8").Split(',').Select(Enum.Parse<AlexNet.Search.VectorStorage>)]);
        break;
    case "search-together":
        ConcurrentSearchBench.Run(int.Parse(Opt("--n", "100000")), int.Parse(Opt("--dim", "4096")), Ints("--concurrency", "1,4,16"),
            double.Parse(Opt("--seconds", "10")), int.Parse(Opt("--k", "10")), int.Parse(Opt("--max-group", "16")),
            int.Parse(Opt("--delay-ms", "0")), int.Parse(Opt("--threads", "0")),
            [.. Opt("--storage", "Float32,Float16,Int8").Split(',').Select(Enum.Parse<AlexNet.Search.VectorStorage>)], bool.Parse(Opt("--each-alone", "true")),
            Opt("--alone-below-mb", "") is { Length: > 0 } mb ? int.Parse(mb) : null);
        break;
    case "gallery-db":
        HttpSearchBench.WriteGallery(Opt("--model", "paper.onnx"), Opt("--out", "gallery.db"), int.Parse(Opt("--n", "100000")), int.Parse(Opt("--dim", "4096")));
        break;
    case "http-search":
        HttpSearchBench.Run(new Uri(Opt("--url", "http://127.0.0.1:5080")), int.Parse(Opt("--n", "100000")), Ints("--concurrency", "1,4,16"),
            double.Parse(Opt("--seconds", "10")), int.Parse(Opt("--k", "10")));
        break;
    case "decode":
        DecodeBench.Run(Opt("--images", Images.Default).Split(','), double.Parse(Opt("--seconds", "3")), Opt("--python", "/usr/bin/python3"));
        break;
    case "http":
        HttpBench.Run(new Uri(Opt("--url", "http://127.0.0.1:5080")), Opt("--images", Images.Default).Split(','),
            Ints("--concurrency", "1,4,16"), double.Parse(Opt("--seconds", "20")),
            Opt("--half-of", "") is { Length: > 0 } h ? double.Parse(h) : null, Opt("--open-loop", "true") == "true",
            Opt("--pid", "") is { Length: > 0 } pid ? int.Parse(pid) : null);
        break;
    case "model":
        PaperModel.Write(Opt("--out", "paper.onnx"), AlexNet.Model.AlexNetSpec.FromPreset(Opt("--preset", "paper"), int.Parse(Opt("--classes", "1000"))),
            int.Parse(Opt("--seed", "1")), Enum.Parse<AlexNet.Model.Onnx.LrnForm>(Opt("--lrn", "BandedConv")));
        break;
    case "forward":
        ForwardBench.Run(Opt("--model", "paper.onnx"), Ints("--batches", "1,8,32"), double.Parse(Opt("--seconds", "5")));
        break;
    case "pipeline":
        ForwardBench.Pipeline(Opt("--model", "paper.onnx"), Opt("--images", Images.Default).Split(','), int.Parse(Opt("--batch", "16")),
            double.Parse(Opt("--seconds", "10")));
        break;
    case "memory":
        MemoryBench.Run(Opt("--model", "paper.onnx"), int.Parse(Opt("--max-batch", "16")));
        break;
    case "stream":
        StreamExperiment.Run();
        break;
    case "peaks":
        PeakBench.Run(double.Parse(Opt("--seconds", "2")), int.Parse(Opt("--threads", Environment.ProcessorCount.ToString())));
        break;
    case "forward-compare":
        return ForwardCompare.Run(Opt("--models", "").Split(',', StringSplitOptions.RemoveEmptyEntries), Ints("--batches", "1,8,32"),
            double.Parse(Opt("--seconds", "5")), int.Parse(Opt("--rounds", "3")), double.Parse(Opt("--peak-seconds", "1")),
            rest.Contains("--profile"), double.Parse(Opt("--min-agreement", "0")));
    case "kernels":
        KernelBench.Run(int.Parse(Opt("--dim", "4096")), int.Parse(Opt("--rows", "256")));
        break;
    default:
        Console.WriteLine("""
            alexnet-bench model    [--out paper.onnx] [--preset paper] [--classes 1000] [--seed 1] [--lrn BandedConv|Operator]
            alexnet-bench forward  [--model paper.onnx] [--batches 1,8,32] [--seconds 5]   the service's forward, answers checked
            alexnet-bench decode   [--images a.jpg,b.jpg] [--seconds 3] [--python /usr/bin/python3]   ms/image against Pillow
            alexnet-bench pipeline [--model paper.onnx] [--batch 16] [--seconds 10]   decode + forward in process
            alexnet-bench http     [--url http://127.0.0.1:5080] [--concurrency 1,4,16] [--seconds 20] [--open-loop true]
                                   [--half-of IMG_PER_S] [--pid SERVICE_PID]   against a running service (Cache:Enabled=false)
            alexnet-bench peaks    [--seconds 2] [--threads CORES]   multiply-accumulate peaks: fp32 FMA, int8 vpdpbusd
                                   (VNNI) and MLAS's AVX2/AVX-512BW int8 sequences, all threads at once
            alexnet-bench forward-compare --models A.onnx,B.onnx [--batches 1,8,32] [--seconds 5] [--rounds 3]
                                   [--peak-seconds 1] [--profile] [--min-agreement 0]   the service's forward of two
                                   models, rounds interleaved: img/s, B/A, top-1 agreement, fraction of each peak
            alexnet-bench memory   [--model paper.onnx] [--max-batch 16]   resident memory of the model in a process
            alexnet-bench search   [--n 10000,100000] [--dim 4096] [--queries 30] [--k 10] [--threads 0]
            alexnet-bench search-together [--n 100000] [--dim 4096] [--concurrency 1,4,16] [--seconds 10] [--k 10]
                                   [--max-group 16] [--delay-ms 0] [--threads 0] [--storage Float32,Float16,Int8] [--each-alone true]
                                   queries/s of concurrent searches through SearchCoalescer, answers checked
            alexnet-bench search-pass [--n 30000] [--dim 4096] [--groups 1,4,8,16] [--seconds 3] [--k 10] [--threads 1]
                                   [--storage ...]   CPU time per query of one pass for g queries, no coalescer, answers checked
            alexnet-bench gallery-db [--model paper.onnx] [--out gallery.db] [--n 100000] [--dim 4096]   a gallery of N
                                   rows of the search bench's vectors, as if computed by the model
            alexnet-bench http-search [--url http://127.0.0.1:5080] [--n 100000] [--concurrency 1,4,16] [--seconds 10] [--k 10]
                                   GET /api/gallery/{id}/similar against a running service with that gallery
            alexnet-bench kernels  [--dim 4096] [--rows 256]   scan kernels on cached rows, one core
            alexnet-bench stream   one-core streaming rates over 1 GiB on huge pages
            """);
        return 2;
}
return 0;

static class Images
{
    /// <summary>Two real 640x427 photographs from Debian's python3-sklearn.</summary>
    public const string Default = "/usr/lib/python3/dist-packages/sklearn/datasets/images/china.jpg,/usr/lib/python3/dist-packages/sklearn/datasets/images/flower.jpg";
}
