# syntax=docker/dockerfile:1
# The inference service on CPU hosts. Build from the repository root:
#   docker build -f docker/api.Dockerfile -t alexnet-api .
# The runtime stage is the ASP.NET runtime only: no SDK, no TorchSharp (the API never references it), and none of
# the GPU package's CUDA and TensorRT providers (a CPU host never loads them; libonnxruntime_providers_cuda.so alone
# is 284 MB).
# Base images are build arguments so that a machine without a registry can build against local stand-ins
# (tests/Containers/engine.sh); NUGET_SOURCE (empty: the usual sources) points the restore at another feed.

ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0
ARG ASPNET_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0

FROM ${SDK_IMAGE} AS build
ARG NUGET_SOURCE=
WORKDIR /src
# Restore first, from the project files alone, so the layer is cached until a package changes.
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
    && rm -f /app/*.dll.config /app/onnxruntime*.dll \
             /app/libonnxruntime_providers_cuda.so /app/libonnxruntime_providers_tensorrt.so

FROM ${ASPNET_IMAGE} AS runtime
# curl only for the container health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl=* \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app ./
# The demo model (and its card and pictures), the profiles and the sample images: nothing else of models/ (a
# user's own weights there stay out; .dockerignore also keeps them out of the build context).
COPY models/fashion-mnist-compact.* /models/
COPY models/profiles/ /models/profiles/
COPY models/samples/ /models/samples/
COPY docker/healthcheck.sh /usr/local/bin/alexnet-healthcheck
RUN mkdir -p /data && chown "$APP_UID" /data
ENV ASPNETCORE_HTTP_PORTS=8080 \
    Grpc__Url=http://+:8081 \
    Inference__ModelPath=/models/fashion-mnist-compact.onnx \
    Samples__Path=/models/samples \
    Inference__Provider=Cpu \
    Gallery__DatabasePath=/data/gallery.db
VOLUME ["/data"]
# 8080: REST (/api, /v2); 8081: gRPC (the Open Inference Protocol, HTTP/2 without TLS)
EXPOSE 8080 8081
USER $APP_UID
# GET /health/ready on the configured port (ASPNETCORE_URLS, else ASPNETCORE_HTTP_PORTS).
HEALTHCHECK --interval=5s --timeout=4s --start-period=30s --retries=3 \
    CMD ["alexnet-healthcheck"]
ENTRYPOINT ["dotnet", "AlexNet.Api.dll"]
