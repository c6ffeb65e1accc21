# syntax=docker/dockerfile:1
# The inference service on NVIDIA GPU hosts. Microsoft.ML.OnnxRuntime.Gpu 1.31 loads CUDA 13 (libcublasLt.so.13)
# and cuDNN 9, which this base image carries; the ASP.NET runtime is copied from Microsoft's image.
#   docker build -f docker/api-gpu.Dockerfile -t alexnet-api:gpu .
# Run with a GPU (docker run --gpus all, or the compose `gpu` profile) and Inference__Provider=Cuda.
# Base images are build arguments (the CUDA one as well); NUGET_SOURCE (empty: the usual sources) points the restore
# at another feed. Never built on the development machine: no CUDA base image can be made there (README).

ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG ASPNET_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM ${SDK_IMAGE} AS build
ARG NUGET_SOURCE=
WORKDIR /src
COPY Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY src/Model/AlexNet.Model.csproj src/Model/
COPY src/Search/AlexNet.Search.csproj src/Search/
COPY src/Api/AlexNet.Api.csproj src/Api/
# NUGET_SOURCE set: that feed alone (plain http allowed: a feed on the build host, e.g. tests/Containers/nuget-feed.py).
RUN if [ -n "$NUGET_SOURCE" ]; then printf '<configuration><packageSources><clear /><add key="build" value="%s" allowInsecureConnections="true" /></packageSources></configuration>' \
        "$NUGET_SOURCE" > /tmp/nuget.config; fi \
    && dotnet restore src/Api/AlexNet.Api.csproj ${NUGET_SOURCE:+--configfile /tmp/nuget.config}
COPY src/Model/ src/Model/
COPY src/Search/ src/Search/
COPY src/Api/ src/Api/
RUN dotnet publish src/Api/AlexNet.Api.csproj -c Release --no-restore -o /app \
    && rm -f /app/onnxruntime*.dll

FROM ${ASPNET_IMAGE} AS aspnet

FROM ${CUDA_IMAGE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl=* ca-certificates=* libicu74=* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1654 --create-home app
COPY --from=aspnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
WORKDIR /app
COPY --from=build /app ./
# The demo model (and its card and pictures), the profiles and the sample images: nothing else of models/ (a
# user's own weights there stay out; .dockerignore also keeps them out of the build context).
COPY models/fashion-mnist-compact.* /models/
COPY models/profiles/ /models/profiles/
COPY models/samples/ /models/samples/
COPY docker/healthcheck.sh /usr/local/bin/alexnet-healthcheck
RUN mkdir -p /data && chown app /data
ENV ASPNETCORE_HTTP_PORTS=8080 \
    Grpc__Url=http://+:8081 \
    Inference__ModelPath=/models/fashion-mnist-compact.onnx \
    Samples__Path=/models/samples \
    Inference__Provider=Cuda \
    Gallery__DatabasePath=/data/gallery.db
VOLUME ["/data"]
# 8080: REST (/api, /v2); 8081: gRPC (the Open Inference Protocol, HTTP/2 without TLS)
EXPOSE 8080 8081
USER app
# GET /health/ready on the configured port (ASPNETCORE_URLS, else ASPNETCORE_HTTP_PORTS).
HEALTHCHECK --interval=5s --timeout=4s --start-period=60s --retries=3 \
    CMD ["alexnet-healthcheck"]
ENTRYPOINT ["dotnet", "AlexNet.Api.dll"]
