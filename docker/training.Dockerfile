# syntax=docker/dockerfile:1
# The training worker (TorchSharp, CPU libtorch by default). Build from the repository root:
#   docker build -f docker/training.Dockerfile -t alexnet-training .
# libstdc++: the build patches TorchSharp's native bridge in the publish output (build/TorchSharpNative.targets), so
# the image works on any base; where the base's libstdc++ is GCC 13 or newer the weak flag changes nothing.
# CUDA: the CUDA libtorch package is not served by the registry this project is built against, so it is a build
# argument, not a default: --build-arg LIBTORCH_PACKAGE=libtorch-cuda-12.8-linux-x64 and a CUDA base image.

ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/runtime:10.0

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
ARG LIBTORCH_PACKAGE=libtorch-cpu-linux-x64
WORKDIR /src
COPY Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY src/Model/AlexNet.Model.csproj src/Model/
COPY src/Training/AlexNet.Training.csproj src/Training/
RUN dotnet restore src/Training/AlexNet.Training.csproj -p:LibTorchPackage=${LIBTORCH_PACKAGE}
COPY src/Model/ src/Model/
COPY src/Training/ src/Training/
RUN dotnet publish src/Training/AlexNet.Training.csproj -c Release --no-restore -p:LibTorchPackage=${LIBTORCH_PACKAGE} -o /app \
    && rm -f /app/onnxruntime*.dll /app/*.dylib

FROM ${RUNTIME_IMAGE} AS runtime
WORKDIR /app
COPY --from=build /app ./
RUN mkdir -p /models /runs && chown "$APP_UID" /models /runs
USER $APP_UID
ENTRYPOINT ["dotnet", "alexnet-train.dll"]
CMD ["--help"]
