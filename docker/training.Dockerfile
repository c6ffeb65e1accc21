# syntax=docker/dockerfile:1
# The training worker (TorchSharp, CPU libtorch by default). Build from the repository root:
#   docker build -f docker/training.Dockerfile -t alexnet-training .
# libstdc++: the build patches TorchSharp's native bridge in the publish output (build/TorchSharpNative.targets), so
# the image works on any base; where the base's libstdc++ is GCC 13 or newer the weak flag changes nothing.
# CUDA: the CUDA libtorch package is not served by the registry this project is built against, so it is a build
# argument, not a default: --build-arg LIBTORCH_PACKAGE=libtorch-cuda-12.8-linux-x64 and a CUDA base image
# (--build-arg RUNTIME_IMAGE=...). The worker evaluates ONNX files on the CPU, so ONNX Runtime's CUDA and TensorRT
# providers are left out.
# Base images are build arguments (local stand-ins where no registry answers: tests/Containers/engine.sh);
# NUGET_SOURCE (empty: the usual sources) points the restore at another feed.

ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime:10.0

FROM ${SDK_IMAGE} AS build
ARG LIBTORCH_PACKAGE=libtorch-cpu-linux-x64
ARG NUGET_SOURCE=
WORKDIR /src
COPY Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY src/Model/AlexNet.Model.csproj src/Model/
COPY src/Training/AlexNet.Training.csproj src/Training/
# NUGET_SOURCE set: that feed alone (plain http allowed: a feed on the build host, e.g. tests/Containers/nuget-feed.py).
RUN if [ -n "$NUGET_SOURCE" ]; then printf '<configuration><packageSources><clear /><add key="build" value="%s" allowInsecureConnections="true" /></packageSources></configuration>' \
        "$NUGET_SOURCE" > /tmp/nuget.config; fi \
    && dotnet restore src/Training/AlexNet.Training.csproj -p:LibTorchPackage=${LIBTORCH_PACKAGE} ${NUGET_SOURCE:+--configfile /tmp/nuget.config}
COPY src/Model/ src/Model/
COPY src/Training/ src/Training/
RUN dotnet publish src/Training/AlexNet.Training.csproj -c Release --no-restore -p:LibTorchPackage=${LIBTORCH_PACKAGE} -o /app \
    && rm -f /app/onnxruntime*.dll /app/*.dylib \
             /app/libonnxruntime_providers_cuda.so /app/libonnxruntime_providers_tensorrt.so

FROM ${RUNTIME_IMAGE} AS runtime
WORKDIR /app
COPY --from=build /app ./
COPY docker/training-entrypoint.sh /usr/local/bin/alexnet-train
# /models and /runs: where compose mounts ./models and ./runs. The entrypoint starts as root only to run the worker
# as the owner of /models (see docker/training-entrypoint.sh); unmounted, that is `app`.
RUN mkdir -p /models /runs /data && chown "$APP_UID:$APP_UID" /models /runs
ENTRYPOINT ["alexnet-train"]
CMD ["--help"]
