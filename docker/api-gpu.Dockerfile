# syntax=docker/dockerfile:1
# The inference service on NVIDIA GPU hosts. Microsoft.ML.OnnxRuntime.Gpu 1.31 loads CUDA 13 (libcublasLt.so.13)
# and cuDNN 9, which this base image carries; the ASP.NET runtime is copied from Microsoft's image.
#   docker build -f docker/api-gpu.Dockerfile -t alexnet-api:gpu .
# Run with a GPU (docker run --gpus all, or the compose `gpu` profile) and Inference__Provider=Cuda.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY Directory.Build.props Directory.Build.targets Directory.Packages.props ./
COPY build/ build/
COPY src/Model/AlexNet.Model.csproj src/Model/
COPY src/Search/AlexNet.Search.csproj src/Search/
COPY src/Api/AlexNet.Api.csproj src/Api/
RUN dotnet restore src/Api/AlexNet.Api.csproj
COPY src/Model/ src/Model/
COPY src/Search/ src/Search/
COPY src/Api/ src/Api/
RUN dotnet publish src/Api/AlexNet.Api.csproj -c Release --no-restore -o /app \
    && rm -f /app/onnxruntime*.dll

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS aspnet

FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl=* ca-certificates=* libicu74=* \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 1654 --create-home app
COPY --from=aspnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
WORKDIR /app
COPY --from=build /app ./
COPY models/ /models/
RUN mkdir -p /data && chown app /data
ENV ASPNETCORE_HTTP_PORTS=8080 \
    Inference__ModelPath=/models/fashion-mnist-compact.onnx \
    Inference__Provider=Cuda \
    Gallery__DatabasePath=/data/gallery.db
VOLUME ["/data"]
EXPOSE 8080
USER app
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "http://localhost:8080/health/ready"]
ENTRYPOINT ["dotnet", "AlexNet.Api.dll"]
